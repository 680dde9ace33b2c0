#include "train/samples.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "core/text.h"
#include "io/inputs.h"
#include "io/image.h"

namespace medattn::train {
// Samples whose prepared pixels equal an earlier sample's.
int64_t count_duplicates(const std::vector<uint64_t>& hashes) {
  std::set<uint64_t> seen;
  int64_t dup = 0;
  for (auto h : hashes) dup += seen.insert(h).second ? 0 : 1;
  return dup;
}



// Reads and preprocesses every sample with the card's preprocessing, in parallel over the
// torch thread count. Unreadable samples are reported and left out.
Tensors prepare_samples(const io::Dataset& data, const preprocess::PreprocessConfig& config,
                        const NoticeCallback& on_notice) {
  const int64_t n = static_cast<int64_t>(data.samples.size());
  const int S = config.image_size;
  const int C = config.channels;
  auto x = torch::empty({n, C, S, S}, torch::kFloat32);
  std::vector<char> ok(n, 0);
  std::vector<std::string> errors(n);
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) {
      const auto& s = data.samples[i];
      try {
        cv::Mat display;
        if (!s.pixels.empty()) {
          s.pixels.convertTo(display, CV_32F, 1.0 / 255.0);
        } else {
          display = io::to_display(io::read_image(s.path));
        }
        preprocess::copy_planar(preprocess::prepare_display(display, config), x[i].data_ptr<float>());
        ok[i] = 1;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  };
  const int threads = std::max(1, at::get_num_threads());
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();

  std::vector<int64_t> keep;
  std::vector<int64_t> labels;
  Tensors out;
  for (int64_t i = 0; i < n; ++i) {
    if (!ok[i]) {
      if (on_notice) on_notice("skipped sample: " + errors[i]);
      continue;
    }
    keep.push_back(i);
    labels.push_back(data.samples[i].label);
    out.groups.push_back(data.samples[i].group);
    out.index.push_back(i);
    const float* p = x[i].data_ptr<float>();
    out.hashes.push_back(fnv1a64(p, sizeof(float) * C * S * S));
  }
  out.x = x.index_select(0, torch::tensor(keep, torch::kInt64));
  out.y = torch::tensor(labels, torch::kInt64);
  return out;
}

// The raw covariate values of every row of `t` (the columns named by `fields`; a column the
// CSV lacks is read as missing).
std::vector<std::vector<std::string>> clinical_rows(const io::Dataset& data, const Tensors& t,
                                                    const std::vector<model::ClinicalField>& fields) {
  std::vector<std::vector<std::string>> rows;
  for (int64_t i : t.index) {
    const auto& columns = data.samples[i].columns;
    std::vector<std::string> row;
    for (const auto& f : fields) {
      auto it = columns.find(f.name);
      row.push_back(it == columns.end() ? std::string() : it->second);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// Fills t.c from the dataset's columns. Returns how many values were unknown categories or
// non-numbers (encoded as missing).
int encode_tensors(Tensors& t, const io::Dataset& data, const std::vector<model::ClinicalField>& fields) {
  if (fields.empty()) return 0;
  const auto rows = clinical_rows(data, t, fields);
  const auto F = static_cast<int64_t>(fields.size());
  t.c = torch::empty({t.size(), F}, torch::kFloat32);
  int unknown = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto v = model::encode_clinical(fields, rows[r], &unknown);
    std::memcpy(t.c[static_cast<int64_t>(r)].data_ptr<float>(), v.data(), sizeof(float) * v.size());
  }
  return unknown;
}

// Columns of the schema that the dataset (a CSV) does not have at all.
std::vector<std::string> absent_columns(const io::Dataset& data, const std::vector<model::ClinicalField>& fields) {
  std::vector<std::string> absent;
  for (const auto& f : fields) {
    if (data.samples.empty() || !data.samples.front().columns.count(f.name)) absent.push_back(f.name);
  }
  return absent;
}

// Rows of t selected by `idx`, all tensors included.
Tensors select_rows(const Tensors& t, const std::vector<int64_t>& idx) {
  Tensors out;
  auto it = torch::tensor(idx, torch::kInt64);
  out.x = t.x.index_select(0, it);
  out.y = t.y.index_select(0, it);
  if (t.c.defined()) out.c = t.c.index_select(0, it);
  for (int64_t i : idx) {
    out.groups.push_back(t.groups[i]);
    out.hashes.push_back(t.hashes[i]);
    out.index.push_back(t.index[i]);
  }
  return out;
}

// Stratified split: for each class, a seeded shuffle of its units and the first `fraction` of
// them to validation. A unit is a set of samples that must stay on one side: those sharing a
// patient group, and exact duplicates (identical prepared pixels), joined transitively.
// Without the second rule, the few hundred duplicate files of a set like the brain MRI
// Training folder would put copies of training images into validation and flatter it.
std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(const Tensors& t, double fraction,
                                                                     uint64_t seed) {
  const int64_t n = t.size();
  std::vector<int64_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  std::function<int64_t(int64_t)> root = [&](int64_t i) { return parent[i] == i ? i : parent[i] = root(parent[i]); };
  std::map<std::string, int64_t> first_of_group;
  std::map<uint64_t, int64_t> first_of_hash;
  for (int64_t i = 0; i < n; ++i) {
    if (!t.groups[i].empty()) {
      auto [it, fresh] = first_of_group.emplace(t.groups[i], i);
      if (!fresh) parent[root(i)] = root(it->second);
    }
    auto [it, fresh] = first_of_hash.emplace(t.hashes[i], i);
    if (!fresh) parent[root(i)] = root(it->second);
  }
  std::map<std::string, std::vector<int64_t>> units;
  std::map<std::string, int64_t> unit_label;
  std::vector<std::string> order;
  auto y = t.y.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) {
    const std::string key = std::to_string(root(i));
    if (!units.count(key)) {
      order.push_back(key);
      unit_label[key] = y[i];
    }
    units[key].push_back(i);
  }
  std::map<int64_t, std::vector<std::string>> by_label;
  for (const auto& key : order) by_label[unit_label[key]].push_back(key);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> train, val;
  for (auto& [label, keys] : by_label) {
    std::shuffle(keys.begin(), keys.end(), rng);
    size_t total = 0;
    for (const auto& k : keys) total += units[k].size();
    const size_t want = static_cast<size_t>(std::lround(fraction * static_cast<double>(total)));
    size_t taken = 0;
    for (const auto& k : keys) {
      auto& dst = taken < want ? val : train;
      if (taken < want) taken += units[k].size();
      dst.insert(dst.end(), units[k].begin(), units[k].end());
    }
  }
  std::sort(train.begin(), train.end());
  std::sort(val.begin(), val.end());
  return {train, val};
}

// Logits (mean over the networks and the test-time `views`; model::tta_views) of every row of
// x, in batches: [N][K].
std::vector<std::vector<double>> logits_of(const std::vector<model::AttnNet>& nets, const torch::Tensor& x, int batch_size,
                                           const torch::Tensor& c, const std::vector<int>& views) {
  torch::NoGradGuard no_grad;
  std::vector<std::vector<double>> out;
  for (int64_t s = 0; s < x.size(0); s += batch_size) {
    const int64_t e = std::min<int64_t>(x.size(0), s + batch_size);
    auto logits = model::view_logits(nets, x.slice(0, s, e), c.defined() ? c.slice(0, s, e) : c, views)
                      .to(torch::kFloat64).contiguous();
    for (int64_t i = 0; i < e - s; ++i) {
      auto row = logits[i];
      out.emplace_back(row.data_ptr<double>(), row.data_ptr<double>() + row.size(0));
    }
  }
  return out;
}

std::vector<int> labels_of(const torch::Tensor& y) {
  std::vector<int> labels;
  auto ya = y.accessor<int64_t, 1>();
  for (int64_t i = 0; i < y.size(0); ++i) labels.push_back(static_cast<int>(ya[i]));
  return labels;
}

std::string describe_split(double fraction, uint64_t seed) {
  std::ostringstream s;
  s << "stratified " << fraction << " of the training data, seed " << seed << ", exact duplicates kept on one side";
  return s.str();
}

void write_checkpoint_dir(const std::string& dir, const std::function<void(const std::string& tmp)>& fill) {
  namespace fs = std::filesystem;
  const fs::path tmp = dir + ".tmp", old = dir + ".old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw file_error(ErrorKind::kIOError, "cannot write checkpoint", tmp.string(), ec.message());
  fill(tmp.string());
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  fs::rename(tmp, dir, ec);
  if (ec) throw file_error(ErrorKind::kIOError, "cannot write checkpoint", dir, ec.message());
  fs::remove_all(old, ec);
}

void save_rng_state(const std::string& path) {
  torch::Tensor state;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state();
  }
  torch::save(state, path);
}

void load_rng_state(const std::string& path) {
  torch::Tensor state;
  torch::load(state, path);
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

io::Dataset unlabelled_dataset(const std::string& spec, const std::string& split, int limit, const std::string& what,
                               const std::string& label, const NoticeCallback& on_notice) {
  io::Dataset data;
  const std::string ext = lower(std::filesystem::path(spec).extension().string());
  if (ext == ".npz" || ext == ".csv") {
    io::DatasetOptions o;
    o.split = split;
    data = io::load_dataset(spec, o);
  } else {
    io::InputWalker walker({spec}, nullptr);
    io::InputWalker::Event e;
    while (walker.next(e)) {
      if (e.kind != io::InputWalker::Kind::kItem) continue;
      io::Sample s;
      s.path = e.item.path;
      data.samples.push_back(s);
    }
  }
  for (auto& s : data.samples) s.label = 0;
  if (data.samples.empty()) throw file_error(ErrorKind::kInvalidArgument, what, spec, "no images");
  if (limit > 0 && static_cast<int>(data.samples.size()) > limit) {
    // Evenly over the walk, so that every class folder is represented.
    std::vector<io::Sample> kept;
    const double step = static_cast<double>(data.samples.size()) / limit;
    for (int i = 0; i < limit; ++i) kept.push_back(data.samples[static_cast<size_t>(i * step)]);
    if (on_notice) on_notice(label + ": " + std::to_string(limit) + " of " + std::to_string(data.samples.size()) + " images");
    data.samples = std::move(kept);
  }
  data.classes = {"unlabelled"};
  return data;
}

}  // namespace medattn::train
