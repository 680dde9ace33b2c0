// The weights file (MDATTNW1): save, load with every check, load an encoder, copy (model/net.h).
#include "model/net.h"

#include <cstring>
#include <map>

#include "core/bounded_io.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"

namespace medattn::model {

namespace {

constexpr char kMagic[8] = {'M', 'D', 'A', 'T', 'T', 'N', 'W', '1'};
constexpr uint32_t kWeightsVersion = 1;

std::map<std::string, torch::Tensor> state_of(torch::nn::Module& net) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& p : net.named_parameters(/*recurse=*/true)) state[p.key()] = p.value();
  for (const auto& b : net.named_buffers(/*recurse=*/true)) {
    if (b.key().find("num_batches_tracked") == std::string::npos) state[b.key()] = b.value();
  }
  return state;
}

template <typename T>
void put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// Bounds-checked reader over the file's bytes.
class Reader {
 public:
  Reader(const std::string& bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  void read(void* dst, size_t n) {
    if (n > bytes_.size() - pos_) {
      throw file_error(ErrorKind::kModel, "cannot load weights", path_,
                       "file is truncated at byte " + std::to_string(bytes_.size()));
    }
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
  }
  template <typename T>
  T get() {
    T v;
    read(&v, sizeof(T));
    return v;
  }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  const std::string& bytes_;
  const std::string& path_;
  size_t pos_ = 0;
};

}  // namespace

void save_weights(torch::nn::Module& net, const std::string& path) {
  const auto state = state_of(net);
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(&out, kWeightsVersion);
  put<uint32_t>(&out, static_cast<uint32_t>(state.size()));
  for (const auto& [name, tensor] : state) {
    put<uint32_t>(&out, static_cast<uint32_t>(name.size()));
    out.append(name);
    put<uint32_t>(&out, static_cast<uint32_t>(tensor.dim()));
    for (int64_t d : tensor.sizes()) put<int64_t>(&out, d);
    auto data = tensor.detach().to(torch::kFloat32).contiguous();
    out.append(reinterpret_cast<const char*>(data.data_ptr<float>()), data.numel() * sizeof(float));
  }
  write_file_atomic(path, out);
}

void load_weights(torch::nn::Module& net, const std::string& path) { load_encoder_weights(net, path, {}); }

int load_encoder_weights(torch::nn::Module& net, const std::string& path, const std::vector<std::string>& fresh) {
  auto is_fresh = [&](const std::string& name) {
    for (const auto& prefix : fresh) {
      if (name.compare(0, prefix.size(), prefix) == 0) return true;
    }
    return false;
  };
  const std::string bytes = read_file_bounded(path, ErrorKind::kModel, "cannot load weights", kMaxWeightsBytes);
  auto fail = [&](const std::string& why) {
    return file_error(ErrorKind::kModel, "cannot load weights", path, why);
  };
  Reader in(bytes, path);
  char magic[8];
  in.read(magic, sizeof(magic));
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) throw fail("not a medattn weights file (bad magic)");
  const auto version = in.get<uint32_t>();
  if (version != kWeightsVersion) {
    throw fail("weights version " + std::to_string(version) + " is not supported (expected " +
               std::to_string(kWeightsVersion) + ")");
  }
  auto expected = state_of(net);
  const auto count = in.get<uint32_t>();
  std::map<std::string, torch::Tensor> loaded;
  for (uint32_t i = 0; i < count; ++i) {
    const auto name_len = in.get<uint32_t>();
    if (name_len == 0 || name_len > 1024) throw fail("corrupt tensor name length " + std::to_string(name_len));
    std::string name(name_len, '\0');
    in.read(name.data(), name_len);
    const auto ndim = in.get<uint32_t>();
    if (ndim > 8) throw fail("corrupt rank " + std::to_string(ndim) + " for '" + name + "'");
    std::vector<int64_t> shape(ndim);
    uint64_t numel = 1;
    for (auto& d : shape) {
      d = in.get<int64_t>();
      if (d < 0 || d > (int64_t{1} << 31)) throw fail("corrupt dimension for '" + name + "'");
      numel *= static_cast<uint64_t>(d);
      if (numel > in.remaining() / sizeof(float) + 1) throw fail("file is truncated in tensor '" + name + "'");
    }
    if (is_fresh(name)) {  // read past it
      if (numel * sizeof(float) > in.remaining()) throw fail("file is truncated in tensor '" + name + "'");
      std::vector<float> skipped(numel);
      in.read(skipped.data(), numel * sizeof(float));
      continue;
    }
    auto it = expected.find(name);
    if (it == expected.end()) throw fail("unexpected tensor '" + name + "' (not in this architecture)");
    const auto want = it->second.sizes().vec();
    if (want != shape) {
      throw fail("shape mismatch for '" + name + "' (got " + shape_string(shape) + ", expected " +
                 shape_string(want) + ")");
    }
    auto t = torch::empty(shape, torch::kFloat32);
    in.read(t.data_ptr<float>(), numel * sizeof(float));
    if (!loaded.emplace(name, t).second) throw fail("duplicate tensor '" + name + "'");
  }
  for (const auto& [name, tensor] : expected) {
    if (!loaded.count(name) && !is_fresh(name)) throw fail("missing tensor '" + name + "'");
  }
  if (in.remaining() != 0) throw fail(std::to_string(in.remaining()) + " trailing bytes after the last tensor");
  torch::NoGradGuard no_grad;
  int copied = 0;
  for (auto& [name, tensor] : expected) {
    if (is_fresh(name)) continue;
    tensor.copy_(loaded[name]);
    ++copied;
  }
  return copied;
}

void copy_weights(torch::nn::Module& dst, torch::nn::Module& src) {
  torch::NoGradGuard no_grad;
  auto d = dst.parameters(), s = src.parameters();
  TORCH_CHECK(d.size() == s.size(), "copy_weights: different architectures");
  for (size_t i = 0; i < d.size(); ++i) d[i].copy_(s[i]);
  auto db = dst.buffers(), sb = src.buffers();
  TORCH_CHECK(db.size() == sb.size(), "copy_weights: different architectures");
  for (size_t i = 0; i < db.size(); ++i) db[i].copy_(sb[i]);
}

}  // namespace medattn::model
