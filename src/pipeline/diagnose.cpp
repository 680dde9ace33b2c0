#include "pipeline/diagnose.h"

#include <malloc.h>
#include <strings.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <new>
#include <optional>
#include <opencv2/core.hpp>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/worker.h"
#include "eval/metrics.h"
#include "explain/methods.h"
#include "explain/overlay.h"
#include "model/net.h"
#include "model/ood.h"
#include "model/ood_features.h"
#include "pipeline/clinical_table.h"
#include "pipeline/diagnose_options.h"
#include "pipeline/feeder.h"
#include "report/dicom_out.h"
#include "report/heatmap_files.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace medattn::pipeline {

namespace {

// A finished batch whose decoded images held more than this gives freed memory back.
constexpr int64_t kTrimAfterBytes = int64_t{16} << 20;

// Test hook: MEDATTN_TEST_OOM=<text> makes the heatmap stage of every input whose path
// contains <text> fail as if memory ran out, so that tests can check the batch carries on.
bool injected_oom(const std::string& path) {
  static const char* text = std::getenv("MEDATTN_TEST_OOM");
  return text != nullptr && *text != '\0' && path.find(text) != std::string::npos;
}
}  // namespace

DiagnoseSummary run_diagnose(const DiagnoseOptions& options, const StartCallback& on_start,
                             const RecordCallback& on_record, const NoticeCallback& on_notice,
                             const ProgressCallback& on_progress) {
  const auto t0 = Clock::now();
  if (options.batch_size < 1) throw Error(ErrorKind::kInvalidArgument, "--batch-size must be at least 1");
  if (options.workers < 1) throw Error(ErrorKind::kInvalidArgument, "--workers must be at least 1");
  explain::ExplainOptions xopt = explain_options(options);

  auto model = model::load_model(options.model_dir);
  const auto& card = model.card;
  const double scale_reference = heatmap_scale_reference(options, card, xopt);  // > 0: --heatmap-scale model
  const bool heatmaps = !options.heatmap_dir.empty();
  if (heatmaps) check_writable_dir(options.heatmap_dir);
  std::unique_ptr<report::DicomWriter> dicom = dicom_writer(options, model);
  const bool maps_needed = heatmaps || options.preview || options.thumbnail_size > 0 || dicom;
  const auto views = model::tta_views(options.tta.empty() ? card.tta : model::parse_flips(options.tta));
  xopt.flips = options.heatmap_flips.empty() ? card.heatmap_flips : model::parse_flips(options.heatmap_flips);

  const int target = resolve_target(options, card, xopt);
  const auto F = static_cast<int64_t>(card.clinical.size());
  std::unique_ptr<ClinicalTable> clinical_table = clinical_table_for(options, card, on_notice);
  // The OOD gate, checked like the weights (its SHA-256 against the card's) before anything runs.
  std::optional<model::GaussianStats> gate;
  if (card.ood.enabled()) gate = model::load_gate(options.model_dir, card, model::gate_feature_dim(card, card.ood.feature));

  DiagnoseSummary summary;
  summary.classes = card.classes;
  summary.model_id = model.id();
  if (on_start) on_start(card.classes, summary.model_id);

  Feeder feeder(options, card, maps_needed, heatmaps);
  // Heatmaps are rendered and written on their own thread while the model runs: the batch
  // handed to it, and its records as they were before the model (for a retry).
  std::vector<JobPtr> in_flight;
  std::vector<report::DiagnosisRecord> in_flight_saved;
  // One batch in flight at a time, so that memory stays bounded by the batch.
  std::unique_ptr<Worker> encoder;
  if (maps_needed) encoder = std::make_unique<Worker>(std::function<void()>{}, /*max_in_flight=*/1);
  std::future<void> rendering;  // the batch in flight's
  auto emit = [&](report::DiagnosisRecord& r) {
    ++summary.total;
    if (!r.ok) ++summary.failed;
    if (r.ok && !r.abstained.empty()) ++summary.abstained;
    r.model = summary.model_id;
    if (on_record) on_record(r);
    if (on_progress) {
      Progress p;
      p.done = summary.total;
      p.failed = summary.failed;
      p.abstained = summary.abstained;
      p.total = feeder.total();
      p.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      on_progress(p);
    }
  };

  torch::NoGradGuard no_grad;
  const int size = card.preprocess.image_size;
  const int channels = card.preprocess.channels;
  // The model for the images of `batch`: records filled in (not emitted) and, when maps are
  // drawn, each job's maps made ready for the encoding thread.
  auto compute = [&](std::vector<JobPtr>& batch) {
    std::vector<torch::Tensor> inputs;
    std::vector<Job*> good;
    for (auto& j : batch) {
      if (j->kind != Job::Kind::kImage || !j->record.error.empty()) continue;
      auto t = torch::empty({channels, size, size}, torch::kFloat32);
      preprocess::copy_planar(j->input, t.data_ptr<float>());
      inputs.push_back(t);
      good.push_back(j.get());
    }
    if (!good.empty()) {
      const auto x = torch::stack(inputs);
      torch::Tensor clinical;
      if (F > 0) {
        clinical = torch::empty({static_cast<int64_t>(good.size()), F}, torch::kFloat32);
        for (size_t b = 0; b < good.size(); ++b) {
          const std::vector<std::string>* row = clinical_table ? clinical_table->find(good[b]->item.path) : nullptr;
          const auto v = model::encode_clinical(card.clinical, row ? *row : std::vector<std::string>(F));
          std::memcpy(clinical[static_cast<int64_t>(b)].data_ptr<float>(), v.data(), sizeof(float) * F);
          for (int64_t f = 0; f < F; ++f) {
            if (std::isnan(v[f])) good[b]->record.clinical_missing.push_back(card.clinical[f].name);
          }
        }
      }
      torch::Tensor logits, maps, signed_maps, shares;
      std::vector<double> scores;
      const bool plain = !maps_needed && F == 0 && views.size() <= 1;
      if (gate && plain) {
        // One pass per network gives both the gate's feature and the diagnosis.
        scores = model::gate_scores(*gate, model::gate_features(model.nets, x, clinical, card.ood.feature, &logits));
      } else if (gate) {
        scores = model::gate_scores(*gate, model::gate_features(model.nets, x, clinical, card.ood.feature));
      }
      if (logits.defined()) {
        // the gate's pass above gave them
      } else if (maps_needed) {
        const auto ex = explain::explain(model.nets, x, xopt, std::vector<int>(good.size(), target), clinical, views);
        logits = ex.logits;
        maps = ex.maps;
        signed_maps = ex.signed_maps;
        if (scale_reference > 0) {
          // Comparable across images: the card's reference is 1; above it the colour saturates.
          maps = (maps / scale_reference).clamp(0.0, 1.0);
          if (signed_maps.defined()) signed_maps = (signed_maps / scale_reference).clamp(-1.0, 1.0);
        }
        maps = maps.contiguous();
        if (signed_maps.defined()) signed_maps = signed_maps.contiguous();
        if (F > 0) shares = explain::clinical_attention(model.nets, x, clinical);
      } else if (F > 0) {
        // Per network, one pass gives both the diagnosis and the attention that reached the
        // covariates; it is also the identity view of the test-time views, whose flipped views
        // take one pass each. An ensemble averages both over its networks.
        for (auto net : model.nets) {
          net->eval();
          auto o = net->forward(x, /*keep_attention=*/true, clinical);
          auto l = model::view_logits(net, x, clinical, views, o.logits);
          auto a = explain::clinical_attention(net, o);
          logits = logits.defined() ? logits + l : l;
          shares = shares.defined() ? shares + a : a;
        }
        if (model.nets.size() > 1) {
          logits = logits / static_cast<double>(model.nets.size());
          shares = shares / static_cast<double>(model.nets.size());
        }
      } else {
        logits = model::view_logits(model.nets, x, clinical, views);
      }
      if (F > 0) {
        shares = shares.contiguous();
        for (size_t b = 0; b < good.size(); ++b) {
          for (int64_t f = 0; f < F; ++f) {
            good[b]->record.clinical_attention.emplace_back(card.clinical[f].name,
                                                            shares[static_cast<int64_t>(b)][f].item<double>());
          }
        }
      }
      auto probs = torch::softmax(logits.to(torch::kFloat64) / card.temperature, 1).contiguous();
      for (size_t b = 0; b < good.size(); ++b) {
        auto& r = good[b]->record;
        const double* row = probs[static_cast<int64_t>(b)].data_ptr<double>();
        const std::vector<double> p(row, row + card.classes.size());
        if (!std::all_of(p.begin(), p.end(), [](double v) { return std::isfinite(v); })) {
          // The inputs were finite (decode checks them); weights or a card can still overflow.
          r.error = "cannot diagnose '" + good[b]->item.path + "': the model's output is not finite (NaN or infinity)";
          continue;
        }
        for (size_t c = 0; c < card.classes.size(); ++c) r.probabilities.emplace_back(card.classes[c], p[c]);
        const int best = eval::decide(p, card.threshold);
        r.diagnosis = card.classes[best];
        r.probability = p[best];
        r.ok = true;
        // Abstention: the scope checks first, then the gate.
        std::string reason;
        if (!good[b]->scope.empty()) {
          if (options.ignore_scope) {
            r.warning = good[b]->scope + " (ignored: --ignore-scope)";
          } else {
            reason = good[b]->scope;
          }
        }
        if (gate) {
          r.ood_score = scores[b];
          if (reason.empty() && scores[b] > card.ood.threshold) reason = model::gate_reason(card.ood, scores[b]);
        }
        if (!reason.empty()) {
          if (options.no_abstain) {
            r.warning += (r.warning.empty() ? "" : "; ") + reason + " (not abstained: --no-abstain)";
          } else {
            r.abstained = reason;
          }
        }
        if (!r.abstained.empty()) {
          r.diagnosis.clear();
          r.probability = 0;
        }
        if (!maps_needed) continue;
        // What the encoding thread renders: the map over the model input and how to draw it.
        auto& mo = good[b]->maps;
        const auto m = maps[static_cast<int64_t>(b)];
        mo.map = cv::Mat(size, size, CV_32FC1, m.data_ptr<float>()).clone();
        if (signed_maps.defined()) {
          const auto sm = signed_maps[static_cast<int64_t>(b)];
          mo.signed_map = cv::Mat(size, size, CV_32FC1, sm.data_ptr<float>()).clone();
        }
        mo.display = good[b]->display;
        mo.letterbox = good[b]->letterbox;
        mo.size = size;
        mo.look.alpha = options.heatmap_alpha;
        mo.look.contour_top = options.contour_top;
        mo.look.min_side = options.overlay_min_side;
        mo.look.legend_note = scale_reference > 0 ? "model scale" : "per image";
        mo.look.caption = report::overlay_caption(card.classes, p, best, target, xopt.method, r.abstained);
        if (signed_maps.defined()) {
          mo.look.diverging = true;
          mo.look.legend_title = "evidence";
          mo.look.caption += "\nred: for " + card.classes[target >= 0 ? target : best] + ", blue: against";
        }
        mo.preview = options.preview;
        mo.thumbnail_size = options.thumbnail_size;
        if (heatmaps) mo.stem = good[b]->stem;
        mo.png_compression = options.png_compression;
        mo.not_written = kHeatmapNotWritten;
        if (dicom && r.format != "dicom") {
          good[b]->not_dicom = true;  // only a DICOM input has a study to return the results to
        } else if (dicom) {
          mo.dicom = dicom.get();
          mo.source = good[b]->item.path;
          mo.dicom_stem = good[b]->dicom_stem;
        }
      }
    }
  };
  // The heatmap stage of `batch` (on the encoding thread, or on this one when retrying).
  auto render = [&](std::vector<JobPtr>& batch) {
    for (auto& j : batch) {
      if (j->maps.map.empty()) continue;
      if (injected_oom(j->item.path)) throw std::bad_alloc();
      report::write_map_outputs(j->maps, j->record);
      j->maps = report::MapOutputs();  // the pictures are written: their memory goes
    }
  };
  // Memory that runs out (in the model or the maps) is the image's error, not the run's: the
  // batch is tried again one image at a time on this thread (results do not depend on the
  // batch), and an image that still cannot be allocated alone gets the error.
  auto one_by_one = [&](std::vector<JobPtr>& batch, const std::vector<report::DiagnosisRecord>& saved) {
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->record = saved[i];
      batch[i]->maps = report::MapOutputs();
      batch[i]->not_dicom = false;
      if (batch[i]->kind != Job::Kind::kImage || !saved[i].error.empty()) continue;
      std::vector<JobPtr> one{batch[i]};
      try {
        compute(one);
        render(one);
      } catch (const std::exception& alone) {
        if (!out_of_memory(alone)) throw;
        batch[i]->record = saved[i];
        batch[i]->maps = report::MapOutputs();
        batch[i]->record.error = "cannot diagnose '" + batch[i]->item.path + "': out of memory";
      }
    }
  };
  // Records and notices of a batch whose maps are written, in input order; then its memory goes.
  auto finish = [&](std::vector<JobPtr>& batch) {
    for (auto& j : batch) {
      // Said once per run, before the records of the batch that first has such an input.
      if (j->not_dicom && summary.not_dicom++ == 0 && on_notice) {
        on_notice("--dicom-out: '" + j->item.path + "' is not DICOM; it and any other non-DICOM input get no DICOM output");
      }
    }
    if (dicom) summary.dicom_objects = dicom->written();
    int64_t held = 0;
    for (auto& j : batch) {
      held += j->bytes;
      if (j->kind == Job::Kind::kNotice) {
        if (on_notice) on_notice(j->notice);
        continue;
      }
      emit(j->record);
    }
    batch.clear();
    feeder.release(held);
    // The batch's pictures are freed; glibc keeps freed memory in its arenas (one per thread
    // that allocated) unless asked. Given back after a batch that held large images (1-2 ms a
    // call), it keeps the peak of a run of them to what the batches in flight hold; batches of
    // small images skip the call.
    if (held > kTrimAfterBytes) malloc_trim(0);
  };
  auto finish_in_flight = [&] {
    if (in_flight.empty()) return;
    try {
      rendering.get();
    } catch (const std::exception& e) {
      if (!out_of_memory(e)) throw;
      one_by_one(in_flight, in_flight_saved);
    }
    finish(in_flight);
  };
  auto process = [&](std::vector<JobPtr>& batch) {
    std::vector<report::DiagnosisRecord> saved;
    for (auto& j : batch) saved.push_back(j->record);
    try {
      compute(batch);
    } catch (const std::exception& e) {
      if (!out_of_memory(e)) throw;
      one_by_one(batch, saved);
      finish_in_flight();
      finish(batch);
      return;
    }
    finish_in_flight();  // the encoding thread wrote the previous batch's maps meanwhile
    if (!encoder) {
      finish(batch);
      return;
    }
    in_flight.swap(batch);
    in_flight_saved = std::move(saved);
    batch.clear();
    rendering = encoder->submit([&render, &in_flight] { render(in_flight); });
  };
  // Leaving early (an error), the encoding thread is waited for before what it uses goes.
  struct Drain {
    std::future<void>& pending;
    ~Drain() {
      if (pending.valid()) pending.wait();
    }
  } drain{rendering};

  std::vector<JobPtr> batch;
  int good = 0;
  for (;;) {
    JobPtr job;
    // While records wait (a partial batch, or a batch whose maps are being written), a pause
    // in the inputs (paths trickling in on stdin) lets them out rather than holding them.
    const auto next = feeder.next(job, !batch.empty() || !in_flight.empty());
    if (next == Feeder::Next::kJob) {
      batch.push_back(job);
      if (job->kind == Job::Kind::kImage && job->record.error.empty()) ++good;
      if (good < options.batch_size) continue;
    }
    if (batch.empty()) {
      finish_in_flight();
    } else {
      process(batch);
    }
    good = 0;
    if (next == Feeder::Next::kEnd) break;
  }
  finish_in_flight();
  summary.skipped = feeder.skipped();
  summary.resumed = feeder.resumed();
  summary.other_shards = feeder.other_shards();
  summary.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return summary;
}

}  // namespace medattn::pipeline
