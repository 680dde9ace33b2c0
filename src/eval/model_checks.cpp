#include "eval/model_checks.h"

#include <strings.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/text.h"

namespace medattn::eval {
namespace {

std::string fixed3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  return buf;
}

}  // namespace

double chance_auc_bound(const std::vector<int>& labels, int num_classes) {
  if (num_classes < 2) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> count(static_cast<size_t>(num_classes), 0.0);
  for (int y : labels) {
    if (y >= 0 && y < num_classes) count[static_cast<size_t>(y)] += 1;
  }
  const double n = static_cast<double>(labels.size());
  auto se = [&](double n1) {
    const double n0 = n - n1;
    return std::sqrt((n1 + n0 + 1) / (12 * n1 * n0));
  };
  for (double c : count) {
    if (c == 0 || c == n) return std::numeric_limits<double>::quiet_NaN();
  }
  double s;
  if (num_classes == 2) {
    s = se(count[1]);
  } else {
    double sum = 0;
    for (double c : count) sum += se(c) * se(c);
    s = std::sqrt(sum / num_classes) / std::sqrt(static_cast<double>(num_classes));
  }
  return 0.5 + 1.645 * s;
}

std::vector<int> class_counts(const Metrics& m) {
  std::vector<int> out;
  for (const auto& row : m.confusion) {
    int n = 0;
    for (int v : row) n += v;
    out.push_back(n);
  }
  return out;
}

std::vector<std::string> model_warnings(const Predictions& p, const Metrics& m, const std::vector<std::string>& classes,
                                        double temperature, const std::string& what) {
  std::vector<std::string> out;
  const double bound = chance_auc_bound(p.labels, p.num_classes());
  if (!std::isnan(bound) && !(m.auc > bound)) {
    out.push_back("the model is no better than chance on " + what + ": AUC " + fixed3(m.auc) + " (chance 0.5; on these " +
                  std::to_string(m.n) + " images only an AUC above " + fixed3(bound) +
                  " would show it tells the classes apart); its accuracy and ECE mean little");
  }
  const auto counts = class_counts(m);
  for (size_t k = 0; k < classes.size() && k < m.confusion.size(); ++k) {
    int predicted = 0;
    for (const auto& row : m.confusion) predicted += row[k];
    if (predicted == 0 && counts[k] > 0) {
      out.push_back("class '" + classes[k] + "' is never predicted on " + what + " (" + std::to_string(counts[k]) +
                    " of its images, all called something else)");
    }
  }
  if (temperature > 0 && (temperature >= 20 * 0.999 || temperature <= 0.05 * 1.001)) {
    out.push_back("the calibration temperature hit its bound (" + fixed3(temperature) + ", allowed 0.05 to 20): " +
                  (temperature > 1 ? "the logits carry almost no information about the labels"
                                   : "the logits are far too timid for the labels") +
                  ", so the probabilities are not to be trusted");
  }
  return out;
}

ClassMap parse_class_map(const std::string& text, const std::vector<std::string>& model_classes) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::kInvalidArgument, "--class-map '" + text + "': " + why);
  };
  ClassMap map;
  map.data_of_model.assign(model_classes.size(), -1);
  std::stringstream parts(text);
  std::string part;
  while (std::getline(parts, part, ',')) {
    part = trim(part);
    const auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == part.size()) {
      throw bad("expected DATA_CLASS=MODEL_CLASS[+MODEL_CLASS...] (got '" + part + "')");
    }
    const std::string data = trim(part.substr(0, eq));
    for (const auto& d : map.data_classes) {
      if (strcasecmp(d.c_str(), data.c_str()) == 0) throw bad("data class '" + data + "' is named twice");
    }
    const int index = static_cast<int>(map.data_classes.size());
    map.data_classes.push_back(data);
    std::stringstream names(part.substr(eq + 1));
    std::string name;
    while (std::getline(names, name, '+')) {
      name = trim(name);
      int found = -1;
      for (size_t c = 0; c < model_classes.size(); ++c) {
        if (strcasecmp(model_classes[c].c_str(), name.c_str()) == 0) found = static_cast<int>(c);
      }
      if (found < 0) {
        throw bad("'" + name + "' is not a class of the model (" + join(model_classes, ", ") + ")");
      }
      if (map.data_of_model[static_cast<size_t>(found)] >= 0) throw bad("model class '" + name + "' is mapped twice");
      map.data_of_model[static_cast<size_t>(found)] = index;
    }
  }
  for (size_t c = 0; c < model_classes.size(); ++c) {
    if (map.data_of_model[c] < 0) {
      throw bad("model class '" + model_classes[c] + "' is not mapped (every class of the model goes to one data class)");
    }
  }
  if (map.data_classes.size() < 2) throw bad("at least two data classes are needed");
  return map;
}

Predictions merge_classes(const Predictions& model_level, const ClassMap& map) {
  Predictions out;
  out.labels = model_level.labels;
  for (const auto& row : model_level.probabilities) {
    std::vector<double> merged(map.data_classes.size(), 0.0);
    for (size_t c = 0; c < row.size(); ++c) merged[static_cast<size_t>(map.data_of_model[c])] += row[c];
    out.probabilities.push_back(std::move(merged));
  }
  return out;
}

}  // namespace medattn::eval
