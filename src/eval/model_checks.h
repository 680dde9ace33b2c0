// Signs that a model failed to learn, said out loud instead of left in the numbers: a model
// no better than chance, a class it never predicts, a temperature stuck at its bound. And the
// class map that lets `evaluate` score a model on data whose classes merge the model's.
#pragma once

#include <string>
#include <vector>

#include "eval/metrics.h"

namespace medattn::eval {

// The AUC above which a model is better than chance at the 5% level (one-sided) on these
// labels: 0.5 + 1.645 * the standard error of the Mann-Whitney AUC under the null hypothesis,
// sqrt((n1 + n0 + 1) / (12 n1 n0)) (Hanley & McNeil 1982). Multi-class (macro one-vs-rest
// mean): the root mean square of the classes' standard errors over sqrt(K). NaN when a class
// has no samples.
double chance_auc_bound(const std::vector<int>& labels, int num_classes);

// Samples per true class (the confusion matrix's row sums).
std::vector<int> class_counts(const Metrics& m);

// One line per problem, empty when none: the AUC is not above chance_auc_bound(); a class with
// samples is never predicted; `temperature` is at a bound of fit_temperature() (0.05 or 20;
// pass a negative value to skip). `what` names the data ("validation", "the data").
std::vector<std::string> model_warnings(const Predictions& p, const Metrics& m, const std::vector<std::string>& classes,
                                        double temperature, const std::string& what);

// `evaluate --class-map no=notumor,yes=glioma+meningioma+pituitary`: each data class (left of
// '=') is the sum of the model classes on its right ('+'), matched case-insensitively.
struct ClassMap {
  std::vector<std::string> data_classes;  // in the order given
  std::vector<int> data_of_model;         // model class index -> data class index
};

// Throws medattn::Error(kInvalidArgument) naming the problem: a part without '=', an unknown
// model class, a model class mapped twice or not at all, a data class named twice.
ClassMap parse_class_map(const std::string& text, const std::vector<std::string>& model_classes);

// The model's probabilities summed into the data's classes; labels are kept (they are the
// data's). REQUIRES: every row has model_classes.size() entries.
Predictions merge_classes(const Predictions& model_level, const ClassMap& map);

}  // namespace medattn::eval
