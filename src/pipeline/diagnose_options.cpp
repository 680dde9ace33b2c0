#include "pipeline/diagnose_options.h"

#include <strings.h>

#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "model/net.h"

namespace fs = std::filesystem;

namespace medattn::pipeline {

explain::ExplainOptions explain_options(const DiagnoseOptions& options) {
  explain::ExplainOptions xopt = options.explain;
  explain::check_options(xopt);
  return xopt;
}

double heatmap_scale_reference(const DiagnoseOptions& options, const model::ModelCard& card, explain::ExplainOptions& xopt) {
  double scale_reference = 0;
  if (options.heatmap_scale == "model") {
    const auto it = card.heatmap_scale.find(xopt.method);
    if (it == card.heatmap_scale.end()) {
      throw Error(ErrorKind::kInvalidArgument, "--heatmap-scale model: model '" + card.name + "' has no heatmap scale for method '" +
                                                   xopt.method + "' (evaluate -m MODEL VALIDATION_DATA --method " +
                                                   xopt.method + " --calibrate-heatmap-scale writes one)");
    }
    scale_reference = it->second;
    xopt.absolute = true;
  } else if (options.heatmap_scale != "image") {
    throw Error(ErrorKind::kInvalidArgument, "--heatmap-scale must be image or model (got '" + options.heatmap_scale + "')");
  }
  return scale_reference;
}

int resolve_target(const DiagnoseOptions& options, const model::ModelCard& card, const explain::ExplainOptions& xopt) {
  int target = -1;
  if (!options.target.empty()) {
    for (size_t c = 0; c < card.classes.size(); ++c) {
      if (strcasecmp(card.classes[c].c_str(), options.target.c_str()) == 0) target = static_cast<int>(c);
    }
    if (target < 0) {
      std::string names;
      for (const auto& c : card.classes) names += (names.empty() ? "" : ", ") + c;
      throw Error(ErrorKind::kInvalidArgument, "--target '" + options.target + "' is not a class of the model (" + names + ")");
    }
  }
  explain::check_options(xopt, card.preprocess.image_size);
  return target;
}

std::unique_ptr<report::DicomWriter> dicom_writer(const DiagnoseOptions& options, const model::LoadedModel& model) {
  const auto& card = model.card;
  std::unique_ptr<report::DicomWriter> dicom;
  if (!options.dicom_dir.empty()) {
    check_writable_dir(options.dicom_dir, "cannot create DICOM output directory");
    report::DicomOutOptions d;
    d.dir = options.dicom_dir;
    d.uid_root = options.uid_root;
    d.uid_seed = options.uid_seed;
    d.method = options.explain.method;
    d.model_name = card.name;
    d.model_id = model.id();
    d.weights_sha256 = model.weights_sha256;
    d.software_version = MEDATTN_VERSION;
    d.frame = options.read.frame;
    dicom = std::make_unique<report::DicomWriter>(d);
  }
  return dicom;
}

std::unique_ptr<ClinicalTable> clinical_table_for(const DiagnoseOptions& options, const model::ModelCard& card,
                                                  const NoticeCallback& on_notice) {
  std::unique_ptr<ClinicalTable> clinical_table;
  const auto F = static_cast<int64_t>(card.clinical.size());
  if (!options.clinical_csv.empty()) {
    if (card.clinical.empty()) {
      if (on_notice) on_notice("model '" + card.name + "' takes no clinical covariates: --clinical " + options.clinical_csv + " is not used");
    } else {
      clinical_table = std::make_unique<ClinicalTable>(options.clinical_csv, card.clinical);
      if (!clinical_table->absent().empty() && on_notice) {
        std::string names;
        for (const auto& a : clinical_table->absent()) names += (names.empty() ? "" : ", ") + a;
        on_notice("--clinical " + options.clinical_csv + " has no column " + names + ": treated as missing");
      }
    }
  } else if (F > 0 && on_notice) {
    std::string names;
    for (const auto& f : card.clinical) names += (names.empty() ? "" : ", ") + f.name;
    on_notice("model '" + card.name + "' takes clinical covariates (" + names +
              "); none given (--clinical FILE.csv), so every covariate is treated as missing");
  }

  return clinical_table;
}

void check_writable_dir(const std::string& dir, const char* what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw file_error(ErrorKind::kIOError, what, dir, ec.message());
  remove_stale_temporaries(dir);  // heatmaps of runs killed mid-write
  const std::string probe = (fs::path(dir) / ".medattn-write-test").string();
  write_file_atomic(probe, "");
  fs::remove(probe, ec);
}

}  // namespace medattn::pipeline
