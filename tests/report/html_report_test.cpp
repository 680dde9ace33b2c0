// The HTML report's building blocks and its all-or-nothing file.
#include "report/html_report.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <opencv2/core.hpp>

#include "core/fs.h"
#include "support/temp_dir.h"

using namespace medattn;
using namespace medattn::report;

TEST_CASE("base64 follows RFC 4648, padding included", "[report][html]") {
  auto b = [](const std::string& s) { return base64(std::vector<unsigned char>(s.begin(), s.end())); };
  CHECK(b("") == "");
  CHECK(b("f") == "Zg==");
  CHECK(b("fo") == "Zm8=");
  CHECK(b("foo") == "Zm9v");
  CHECK(b("foob") == "Zm9vYg==");
  CHECK(b("fooba") == "Zm9vYmE=");
  CHECK(b("foobar") == "Zm9vYmFy");
  CHECK(base64({0xff, 0xfe, 0x00}) == "//4A");
}

TEST_CASE("text from files is escaped, errors are counted by reason", "[report][html]") {
  CHECK(html_escape("<img src=x onerror='a'>&\"") == "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;");
  CHECK(error_reason("cannot read PNG 'scans/a b.png': truncated file") == "cannot read PNG: truncated file");
  CHECK(error_reason("no quotes here") == "no quotes here");
}

TEST_CASE("the report appears only when finished, with one row per record", "[report][html]") {
  testing::TempDir dir;
  const std::string path = dir / "r.html";
  ReportInfo info;
  info.classes = {"NORMAL", "PNEUMONIA"};
  info.model_id = "m@0123456789ab";
  {
    HtmlReport unfinished(path, info);
    DiagnosisRecord r;
    r.file = "x.png";
    unfinished.add(r);
  }
  CHECK(std::filesystem::is_empty(dir.path));  // abandoned: nothing left behind

  HtmlReport report(path, info);
  DiagnosisRecord ok;
  ok.file = "<b>a.png";
  ok.ok = true;
  ok.diagnosis = "PNEUMONIA";
  ok.probability = 0.9;
  ok.probabilities = {{"NORMAL", 0.1}, {"PNEUMONIA", 0.9}};
  ok.thumbnail = cv::Mat(8, 8, CV_8UC3, cv::Scalar(0, 0, 255));
  report.add(ok);
  DiagnosisRecord bad;
  bad.file = "b.png";
  bad.error = "cannot read PNG 'b.png': truncated file";
  report.add(bad);
  CHECK_FALSE(std::filesystem::exists(path));
  report.finish(RunTotals{});
  const std::string page = read_file(path);
  CHECK(page.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(page.find("<td>&lt;b&gt;a.png</td><td>PNEUMONIA</td><td class=\"num\">0.9000</td>") != std::string::npos);
  CHECK(page.find("<tr class=\"error\"><td>b.png</td>") != std::string::npos);
  CHECK(page.find("failed: cannot read PNG: truncated file") != std::string::npos);
  CHECK(page.find("src=\"data:image/jpeg;base64,") != std::string::npos);
  CHECK(page.find("<th>p(PNEUMONIA)</th>") != std::string::npos);
  int files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir.path)) files += static_cast<int>(!f.path().empty());
  CHECK(files == 1);  // no temporary files beside it
}
