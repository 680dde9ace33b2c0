// diagnose's options checked and turned into what the run uses (pipeline/diagnose.cpp).
// Internal to pipeline/. Each throws medattn::Error(kInvalidArgument) naming the flag.
#pragma once

#include <memory>
#include <string>

#include "explain/options.h"
#include "model/card.h"
#include "pipeline/clinical_table.h"
#include "pipeline/diagnose.h"
#include "report/dicom_out.h"

namespace medattn::model {
struct LoadedModel;
}

namespace medattn::pipeline {

// The heatmap method's options (method, rollout, occlusion, saliency), before the model is read.
explain::ExplainOptions explain_options(const DiagnoseOptions& options);

// --heatmap-scale: 0 for "image"; for "model" the card's reference for the method (and
// xopt.absolute is set).
double heatmap_scale_reference(const DiagnoseOptions& options, const model::ModelCard& card, explain::ExplainOptions& xopt);

// --target as a class index (-1: the diagnosis); checks the occlusion patch against the input size.
int resolve_target(const DiagnoseOptions& options, const model::ModelCard& card, const explain::ExplainOptions& xopt);

// --dicom-out's writer (its folder checked), or null without --dicom-out. Throws kIOError.
std::unique_ptr<report::DicomWriter> dicom_writer(const DiagnoseOptions& options, const model::LoadedModel& model);

// The --clinical table (null without one, or for a model without covariates), with notices
// for a CSV that is not used, covariates it lacks, or covariates the model takes but none given.
std::unique_ptr<ClinicalTable> clinical_table_for(const DiagnoseOptions& options, const model::ModelCard& card,
                                                  const NoticeCallback& on_notice);

// Creates `dir` and checks that a file can be written in it (removing stale temporaries of
// killed runs). Throws kIOError "<what> '<dir>': <why>".
void check_writable_dir(const std::string& dir, const char* what = "cannot create heatmap directory");

}  // namespace medattn::pipeline
