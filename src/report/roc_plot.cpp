#include "report/roc_plot.h"

#include <opencv2/imgproc.hpp>

namespace medattn::report {

cv::Mat plot_roc(const std::vector<RocSeries>& series, int size) {
  const int margin = size / 10;
  const int side = size - 2 * margin;
  cv::Mat img(size, size, CV_8UC3, cv::Scalar(255, 255, 255));
  auto at = [&](double fpr, double tpr) {
    return cv::Point(margin + static_cast<int>(fpr * side), size - margin - static_cast<int>(tpr * side));
  };
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  const double scale = size / 1400.0;
  for (int i = 0; i <= 5; ++i) {
    const double v = i / 5.0;
    cv::line(img, at(v, 0), at(v, 1), cv::Scalar(230, 230, 230), 1);
    cv::line(img, at(0, v), at(1, v), cv::Scalar(230, 230, 230), 1);
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%.1f", v);
    cv::putText(img, buf, at(v, 0) + cv::Point(-12, 22), font, scale, cv::Scalar(60, 60, 60), 1, cv::LINE_AA);
    cv::putText(img, buf, at(0, v) + cv::Point(-40, 5), font, scale, cv::Scalar(60, 60, 60), 1, cv::LINE_AA);
  }
  cv::rectangle(img, at(0, 1), at(1, 0), cv::Scalar(0, 0, 0), 1);
  cv::line(img, at(0, 0), at(1, 1), cv::Scalar(170, 170, 170), 1, cv::LINE_AA);
  cv::putText(img, "false positive rate (1 - specificity)", cv::Point(margin + side / 4, size - margin / 4), font,
              scale * 1.1, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::putText(img, "true positive rate (sensitivity)", cv::Point(8, margin / 2), font, scale * 1.1,
              cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  // Ten distinct colours (BGR), so that up to ten classes never share one.
  const cv::Scalar colours[] = {{180, 90, 20}, {30, 30, 200},  {40, 150, 40},  {160, 40, 160}, {20, 140, 200},
                                {90, 90, 90},  {194, 119, 227}, {75, 86, 140}, {34, 189, 188}, {207, 190, 23}};
  for (size_t s = 0; s < series.size(); ++s) {
    const cv::Scalar colour = colours[s % 10];
    std::vector<cv::Point> pts;
    for (const auto& p : series[s].points) pts.push_back(at(p.fpr, p.tpr));
    cv::polylines(img, pts, false, colour, 2, cv::LINE_AA);
    if (series[s].op_fpr >= 0) {
      cv::circle(img, at(series[s].op_fpr, series[s].op_tpr), 7, colour, 2, cv::LINE_AA);
    }
    const cv::Point legend = at(0.45, 0.05) + cv::Point(0, -static_cast<int>(s) * 24);
    cv::line(img, legend, legend + cv::Point(24, 0), colour, 3);
    cv::putText(img, series[s].label, legend + cv::Point(32, 6), font, scale * 1.1, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  return img;
}

}  // namespace medattn::report
