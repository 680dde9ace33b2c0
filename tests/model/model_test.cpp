// The model: shapes, attention weights, weights files and their error messages, cards.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "model/net.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace medattn;

namespace {

model::ModelCard tiny_card(int classes = 2) {
  model::ModelCard card;
  card.name = "tiny";
  for (int i = 0; i < classes; ++i) card.classes.push_back("c" + std::to_string(i));
  card.preprocess.image_size = 32;
  card.arch.stem_channels = {8, 16};
  card.arch.dim = 16;
  card.arch.depth = 2;
  card.arch.heads = 2;
  return card;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// One tensor of a hand-written weights file: its name, the dims written, the floats written
// (and a rank written apart from the dims, to corrupt it).
struct Entry {
  std::string name;
  std::vector<int64_t> dims;
  std::vector<float> data;
  int64_t rank = -1;  // -1: dims.size()
};

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// The weights format of model/net.h, written field by field: "MDATTNW1", u32 version,
// u32 count, then per tensor u32 name length, name, u32 rank, i64 dims, float32 data
// (little-endian, as on every machine this runs on).
std::string weights_bytes(const std::vector<Entry>& tensors, uint32_t version = 1) {
  std::string out = "MDATTNW1";
  put<uint32_t>(out, version);
  put<uint32_t>(out, static_cast<uint32_t>(tensors.size()));
  for (const auto& t : tensors) {
    put<uint32_t>(out, static_cast<uint32_t>(t.name.size()));
    out += t.name;
    put<uint32_t>(out, static_cast<uint32_t>(t.rank >= 0 ? t.rank : static_cast<int64_t>(t.dims.size())));
    for (int64_t d : t.dims) put<int64_t>(out, d);
    for (float v : t.data) put<float>(out, v);
  }
  return out;
}

// The tensors of torch::nn::Linear(2, 1): weight [1,2] and bias [1].
const Entry kWeight{"weight", {1, 2}, {1.5f, -2.0f}};
const Entry kBias{"bias", {1}, {0.25f}};

}  // namespace

TEST_CASE("the network gives logits and per-head attention of the documented shapes", "[model]") {
  torch::manual_seed(0);
  auto net = model::build_net(tiny_card(3));
  net->eval();
  torch::NoGradGuard no_grad;
  auto out = net->forward(torch::randn({4, 1, 32, 32}), /*keep_attention=*/true);
  CHECK(out.logits.sizes() == torch::IntArrayRef({4, 3}));
  REQUIRE(out.attentions.size() == 2);
  // 32 px, two halving stages -> 8x8 grid -> 64 tokens + CLS.
  CHECK(out.attentions[0].sizes() == torch::IntArrayRef({4, 2, 65, 65}));
  CHECK(out.attentions[1].sum(-1).allclose(torch::ones({4, 2, 65}), 1e-5, 1e-5));
  auto plain = net->forward(torch::zeros({1, 1, 32, 32}));
  CHECK(plain.attentions.empty());
}

TEST_CASE("a saved model loads back with identical logits", "[model]") {
  torch::manual_seed(1);
  auto card = tiny_card();
  auto net = model::build_net(card);
  // Make the BatchNorm statistics non-trivial so buffers are checked too.
  net->train();
  net->forward(torch::randn({8, 1, 32, 32}) * 3 + 1);
  net->eval();
  const testing::TempDir tmp("model_roundtrip");
  const fs::path& dir = tmp.path;
  model::save_model(dir.string(), card, net);
  CHECK(fs::exists(dir / "weights.bin"));
  CHECK(fs::exists(dir / "model.json"));

  auto loaded = model::load_model(dir.string());
  CHECK(loaded.card.classes == card.classes);
  CHECK(loaded.card.arch.stem_channels == card.arch.stem_channels);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({3, 1, 32, 32});
  auto a = net->forward(x).logits;
  auto b = loaded.net->forward(x).logits;
  CHECK(torch::equal(a, b));
}

TEST_CASE("loading weights of another architecture names the tensor and both shapes", "[model]") {
  torch::manual_seed(2);
  auto card = tiny_card(3);
  auto net = model::build_net(card);
  const testing::TempDir tmp("model_mismatch");
  const fs::path& dir = tmp.path;
  model::save_model(dir.string(), card, net);
  // Same card but two classes: the head no longer fits.
  auto two = tiny_card(2);
  auto other = model::build_net(two);
  const std::string path = (dir / "weights.bin").string();
  CHECK(error_of([&] { model::load_weights(*other, path); }) ==
        "cannot load weights '" + path + "': shape mismatch for 'head.bias' (got [3], expected [2])");
  // A deeper model misses a block.
  auto deeper = tiny_card(3);
  deeper.arch.depth = 3;
  auto net3 = model::build_net(deeper);
  CHECK(error_of([&] { model::load_weights(*net3, path); }) ==
        "cannot load weights '" + path + "': missing tensor 'blocks.2.attn.proj.bias'");
}

TEST_CASE("corrupt weights files are refused with a clear reason", "[model]") {
  auto card = tiny_card();
  auto net = model::build_net(card);
  const testing::TempDir tmp("model_corrupt");
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "weights.bin").string();
  save_weights(*net, path);
  const std::string good = read_file(path);

  write_file_atomic(path, good.substr(0, good.size() / 2));
  CHECK(error_of([&] { model::load_weights(*net, path); }).rfind("cannot load weights '" + path + "': file is truncated ", 0) == 0);
  write_file_atomic(path, "GARBAGE!" + good.substr(8));
  CHECK(error_of([&] { model::load_weights(*net, path); }) ==
        "cannot load weights '" + path + "': not a medattn weights file (bad magic)");
  write_file_atomic(path, good + "x");
  CHECK(error_of([&] { model::load_weights(*net, path); }) ==
        "cannot load weights '" + path + "': 1 trailing bytes after the last tensor");
}

TEST_CASE("a hand-written weights file loads tensor by tensor, in any order", "[model]") {
  const testing::TempDir tmp("model_handmade");
  const std::string path = tmp / "weights.bin";
  torch::nn::Linear linear(2, 1);
  write_file_atomic(path, weights_bytes({kWeight, kBias}));
  model::load_weights(*linear, path);
  CHECK(torch::equal(linear->weight, torch::tensor({1.5f, -2.0f}).view({1, 2})));
  CHECK(torch::equal(linear->bias, torch::tensor({0.25f})));
  // save_weights writes the same bytes (tensors sorted by name: bias first).
  const std::string saved = tmp / "saved.bin";
  model::save_weights(*linear, saved);
  CHECK(read_file(saved) == weights_bytes({kBias, kWeight}));
}

TEST_CASE("weights files that do not fit are refused with their exact reason, and nothing is copied", "[model]") {
  const testing::TempDir tmp("model_refused");
  const std::string path = tmp / "weights.bin";
  const Entry extra{"extra", {2}, {7.0f, 8.0f}};
  Entry rank9 = kWeight;
  rank9.rank = 9;
  Entry flat = kWeight;
  flat.dims = {2};
  Entry negative = kWeight;
  negative.dims = {1, -2};
  const Entry unnamed{"", {1}, {0.25f}};
  Entry short_data = kWeight;
  short_data.data = {1.5f};
  const std::string all = weights_bytes({kBias, kWeight});
  struct Case {
    std::string what, bytes, message;
  };
  const std::vector<Case> cases{
      {"an extra tensor", weights_bytes({kBias, kWeight, extra}), "unexpected tensor 'extra' (not in this architecture)"},
      {"an extra tensor first", weights_bytes({extra, kBias, kWeight}), "unexpected tensor 'extra' (not in this architecture)"},
      {"a tensor twice", weights_bytes({kBias, kWeight, kBias}), "duplicate tensor 'bias'"},
      {"version 2", weights_bytes({kBias, kWeight}, 2), "weights version 2 is not supported (expected 1)"},
      {"version 0", weights_bytes({kBias, kWeight}, 0), "weights version 0 is not supported (expected 1)"},
      {"rank 9", weights_bytes({kBias, rank9}), "corrupt rank 9 for 'weight'"},
      {"rank 1 for rank 2", weights_bytes({kBias, flat}), "shape mismatch for 'weight' (got [2], expected [1,2])"},
      {"a negative dimension", weights_bytes({kBias, negative}), "corrupt dimension for 'weight'"},
      {"an empty name", weights_bytes({unnamed, kWeight}), "corrupt tensor name length 0"},
      {"a missing tensor", weights_bytes({kWeight}), "missing tensor 'bias'"},
      {"data cut short", weights_bytes({kBias, short_data}), "file is truncated at byte " + std::to_string(all.size() - 4)},
      {"a count too high", all.substr(0, 12) + weights_bytes({kBias, kWeight, kBias}).substr(12, 4) + all.substr(16),
       "file is truncated at byte " + std::to_string(all.size())},
      {"no count", all.substr(0, 12), "file is truncated at byte 12"},
      {"one trailing byte", all + "x", "1 trailing bytes after the last tensor"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    torch::nn::Linear linear(2, 1);
    const auto weight = linear->weight.clone(), bias = linear->bias.clone();
    write_file_atomic(path, c.bytes);
    CHECK(error_of([&] { model::load_weights(*linear, path); }) == "cannot load weights '" + path + "': " + c.message);
    // Everything is checked before anything is copied.
    CHECK(torch::equal(linear->weight, weight));
    CHECK(torch::equal(linear->bias, bias));
  }
  // The file all of them were made from is fine.
  torch::nn::Linear linear(2, 1);
  write_file_atomic(path, all);
  CHECK(error_of([&] { model::load_weights(*linear, path); }) == "(no error)");
  CHECK(linear->bias.item<float>() == 0.25f);
}

TEST_CASE("model cards are validated and name what is wrong", "[model][card]") {
  const testing::TempDir tmp("model_card");
  const fs::path& dir = tmp.path;
  auto json = model::card_to_json(tiny_card());
  const std::string src = "m/model.json";
  CHECK(model::card_from_json(json, src).preprocess.image_size == 32);

  auto v3 = json;
  v3["format_version"] = 3;
  CHECK(error_of([&] { model::card_from_json(v3, src); }) ==
        "invalid model card 'm/model.json': format_version 3 is not supported (expected 1, or 2 for an ensemble)");
  auto no_classes = json;
  no_classes.erase("classes");
  CHECK(error_of([&] { model::card_from_json(no_classes, src); }) ==
        "invalid model card 'm/model.json': missing key 'classes'");
  auto odd = json;
  odd["input"]["size"] = 30;
  CHECK(error_of([&] { model::card_from_json(odd, src); }) ==
        "invalid model card 'm/model.json': input size 30 must be a multiple of 2^2 (one halving per stem stage)");
  auto heads = json;
  heads["architecture"]["heads"] = 3;
  CHECK(error_of([&] { model::card_from_json(heads, src); }).find("dim divisible by heads") != std::string::npos);

  CHECK(error_of([&] { model::read_card((dir / "nope").string()); }) ==
        "cannot load model '" + (dir / "nope").string() + "': not a directory");
  CHECK(error_of([&] { model::read_card(dir.string()); }) ==
        "cannot load model '" + dir.string() + "': missing model.json");
  write_file_atomic((dir / "model.json").string(), "{not json");
  CHECK(error_of([&] { model::read_card(dir.string()); }).rfind("invalid model card '" + (dir / "model.json").string() + "': not valid JSON", 0) == 0);
  write_file_atomic((dir / "model.json").string(), json.dump());
  CHECK(error_of([&] { model::load_model(dir.string()); }) ==
        "cannot load model '" + dir.string() + "': missing weights.bin");
}

TEST_CASE("test-time flips parse, round-trip through the card and are validated", "[model][card][tta]") {
  CHECK((model::parse_flips("hflip,vflip") == std::vector<std::string>{"hflip", "vflip"}));
  CHECK((model::parse_flips(" VFLIP , hflip") == std::vector<std::string>{"hflip", "vflip"}));
  CHECK((model::parse_flips("vflip") == std::vector<std::string>{"vflip"}));
  CHECK(model::parse_flips("none").empty());
  CHECK(model::parse_flips("").empty());
  CHECK(error_of([] { model::parse_flips("hflip,rot90"); }) ==
        "unknown flip 'rot90' (expected hflip, vflip or none)");

  auto card = tiny_card();
  CHECK_FALSE(model::card_to_json(card).contains("tta"));
  card.tta = {"hflip", "vflip"};
  auto json = model::card_to_json(card);
  CHECK(json["tta"]["views"] == 4);
  CHECK((model::card_from_json(json, "m").tta == std::vector<std::string>{"hflip", "vflip"}));
  json["tta"]["flips"] = {"hflip", "hflip"};
  CHECK(error_of([&] { model::card_from_json(json, "m"); }) == "invalid model card 'm': tta.flips lists a flip twice");
  card.heatmap_flips = {"vflip"};
  CHECK((model::card_from_json(model::card_to_json(card), "m").heatmap_flips == std::vector<std::string>{"vflip"}));
  json["tta"]["flips"] = {"transpose"};
  CHECK(error_of([&] { model::card_from_json(json, "m"); }) ==
        "invalid model card 'm': tta.flips: unknown flip 'transpose' (expected hflip, vflip or none)");
  // An empty entry is named as such (it used to be dropped and reported as a repeated flip).
  json["tta"]["flips"] = {"", "hflip"};
  CHECK(error_of([&] { model::card_from_json(json, "m"); }) ==
        "invalid model card 'm': tta.flips: empty flip in ',hflip' (expected hflip, vflip or none, separated by commas)");
}

TEST_CASE("the card keeps its intensity standardisation and refuses unknown ones", "[model][card]") {
  auto card = tiny_card();
  // Cards without it keep their JSON as it was (no new keys in the shipped models' cards).
  CHECK_FALSE(model::card_to_json(card)["preprocess"].contains("intensity"));
  CHECK(model::card_from_json(model::card_to_json(card), "m").preprocess.intensity == "none");
  card.preprocess.intensity = "percentile";
  card.preprocess.intensity_low = 2;
  auto json = model::card_to_json(card);
  CHECK(json["preprocess"]["intensity"] == "percentile");
  const auto back = model::card_from_json(json, "m");
  CHECK(back.preprocess.intensity == "percentile");
  CHECK(back.preprocess.intensity_low == 2);
  CHECK(back.preprocess.intensity_high == 99);
  CHECK(model::describe_card(back).find("stretched 2-99th percentile") != std::string::npos);
  json["preprocess"]["intensity"] = "histogram";
  CHECK(error_of([&] { model::card_from_json(json, "m"); }) ==
        "invalid model card 'm': preprocess.intensity must be none or percentile (got 'histogram')");
  json["preprocess"]["intensity"] = "percentile";
  json["preprocess"]["intensity_percentiles"] = {99, 1};
  CHECK(error_of([&] { model::card_from_json(json, "m"); }) ==
        "invalid model card 'm': preprocess.intensity_percentiles must be [low, high] with 0 <= low < high <= 100");
}

TEST_CASE("the card keeps its colour constancy and refuses unknown ones", "[model][card]") {
  auto card = tiny_card();
  CHECK_FALSE(model::card_to_json(card)["preprocess"].contains("colour_constancy"));
  CHECK(model::card_from_json(model::card_to_json(card), "m").preprocess.colour_constancy == "none");
  card.preprocess.channels = 3;
  card.preprocess.colour_constancy = "shades-of-grey";
  auto json = model::card_to_json(card);
  CHECK(json["preprocess"]["colour_constancy"] == "shades-of-grey");
  const auto back = model::card_from_json(json, "m");
  CHECK(back.preprocess.colour_constancy == "shades-of-grey");
  CHECK(model::describe_card(back).find("shades-of-grey colour constancy") != std::string::npos);
  json["preprocess"]["colour_constancy"] = "grey-world";
  CHECK(error_of([&] { model::card_from_json(json, "m"); }) ==
        "invalid model card 'm': preprocess.colour_constancy must be none or shades-of-grey (got 'grey-world')");
}

TEST_CASE("the card keeps the patients' ages of its intended use and refuses impossible ones", "[model][card]") {
  auto card = tiny_card();
  CHECK_FALSE(model::card_to_json(card)["intended_use"].contains("age_years"));
  card.intended_use.age_years = model::parse_age_range("1-5");
  auto json = model::card_to_json(card);
  CHECK(json["intended_use"]["age_years"] == nlohmann::json::array({1.0, 5.0}));
  const auto back = model::card_from_json(json, "m");
  REQUIRE(back.intended_use.age_years);
  CHECK(*back.intended_use.age_years == std::make_pair(1.0, 5.0));
  CHECK(model::describe_card(back).find("ages:          1-5 years") != std::string::npos);
  CHECK(model::describe_ages({0.5, 17.25}) == "0.5-17.25 years");
  json["intended_use"]["age_years"] = {5, 1};
  CHECK(error_of([&] { model::card_from_json(json, "m"); }) ==
        "invalid model card 'm': intended_use.age_years must be [min, max] in years with 0 <= min <= max <= 150");
  for (const char* bad : {"5", "5-1", "-1-5", "1-", "a-b", "1-200"}) {
    INFO(bad);
    CHECK(error_of([&] { model::parse_age_range(bad); }) ==
          std::string("age range '") + bad + "' is not MIN-MAX in years with 0 <= MIN <= MAX <= 150");
  }
}

TEST_CASE("the card records the weights' SHA-256, changed weights are refused before parsing", "[model][card]") {
  auto card = tiny_card();
  auto net = model::build_net(card);
  const testing::TempDir tmp("model_sha");
  const fs::path& dir = tmp.path;
  model::save_model(dir.string(), card, net);
  const auto written = model::read_card(dir.string());
  const std::string path = (dir / "weights.bin").string();
  std::string bytes = read_file(path);
  CHECK(written.weights_sha256 == sha256_hex(bytes));
  const auto loaded = model::load_model(dir.string());
  CHECK(loaded.weights_sha256 == written.weights_sha256);
  CHECK(loaded.id() == "tiny@" + written.weights_sha256.substr(0, 12));
  CHECK(model::model_id(dir.string()) == loaded.id());

  bytes[bytes.size() - 1] ^= 1;  // one bit of the last weight
  write_file_atomic(path, bytes);
  const std::string got = sha256_hex(bytes);
  CHECK(error_of([&] { model::load_model(dir.string()); }) ==
        "cannot load model '" + dir.string() + "': weights.bin does not match the card's SHA-256 (got " + got.substr(0, 16) +
            "..., expected " + written.weights_sha256.substr(0, 16) + "...): corrupt or replaced");
  write_file_atomic(path, bytes.substr(0, 100));  // truncated: the hash catches it first
  CHECK(error_of([&] { model::load_model(dir.string()); }).find("does not match the card's SHA-256") != std::string::npos);
}

TEST_CASE("a card asking for an absurd network is refused before anything is allocated", "[model][card]") {
  auto json = model::card_to_json(tiny_card());
  const std::string src = "m/model.json";
  auto wide = json;
  wide["architecture"]["dim"] = 1 << 20;
  CHECK(error_of([&] { model::card_from_json(wide, src); }).find("architecture out of bounds") != std::string::npos);
  auto deep = json;
  deep["architecture"]["stem_channels"] = std::vector<int>(40, 8);  // 2^40: would overflow the shift
  CHECK(error_of([&] { model::card_from_json(deep, src); }).find("architecture out of bounds") != std::string::npos);
  auto big = json;
  big["architecture"]["dim"] = 4096;
  big["architecture"]["heads"] = 64;
  big["architecture"]["depth"] = 64;
  CHECK(error_of([&] { model::card_from_json(big, src); }) ==
        "invalid model card 'm/model.json': architecture too large (about 8590 million parameters, limit 200)");
  auto bad_hash = json;
  bad_hash["weights"]["sha256"] = "xyz";
  CHECK(error_of([&] { model::card_from_json(bad_hash, src); }) ==
        "invalid model card 'm/model.json': weights.sha256 must be 64 lower-case hex digits");
}

TEST_CASE("an ensemble saves one file per network, loads back, averages their logits and has an id of its own", "[model][card][ensemble]") {
  auto card = tiny_card();
  torch::manual_seed(1);
  auto a = model::build_net(card);
  auto b = model::build_net(card);
  auto c = model::build_net(card);
  for (auto* net : {&a, &b, &c}) (*net)->eval();
  const testing::TempDir tmp("model_ensemble");
  const fs::path& dir = tmp.path;
  // A larger ensemble written earlier leaves member-4.bin: writing a smaller one removes it.
  model::save_model(dir.string(), card, std::vector<model::AttnNet>{a, b, c, c});
  CHECK(fs::exists(dir / "member-4.bin"));
  model::save_model(dir.string(), card, std::vector<model::AttnNet>{a, b, c});
  CHECK_FALSE(fs::exists(dir / "member-4.bin"));
  const auto written = model::read_card(dir.string());
  REQUIRE(written.members.size() == 2);
  CHECK(written.network_count() == 3);
  CHECK(written.members[0].file == "member-2.bin");
  CHECK(written.members[1].file == "member-3.bin");
  CHECK(written.members[1].sha256 == sha256_file((dir / "member-3.bin").string()));
  CHECK(model::card_to_json(written)["weights"]["members"][0]["file"] == "member-2.bin");
  // Version 2, so that a reader from before ensembles refuses the card rather than use one network.
  CHECK(model::card_to_json(written)["format_version"] == 2);
  CHECK(model::card_to_json(tiny_card())["format_version"] == 1);

  const auto loaded = model::load_model(dir.string());
  REQUIRE(loaded.nets.size() == 3);
  const auto x = torch::randn({2, 1, 32, 32});
  torch::NoGradGuard no_grad;
  auto la = a->forward(x).logits, lb = b->forward(x).logits, lc = c->forward(x).logits;
  CHECK(torch::allclose(model::view_logits(loaded.nets, x, {}, {}), (la + lb + lc) / 3.0, 1e-5, 1e-6));
  auto second = loaded.nets[1];
  CHECK(torch::allclose(model::view_logits(second, x, {}, {}), lb, 1e-5, 1e-6));
  // Not the id of its first network alone: records of the two must not be confused.
  const std::string digests = written.weights_sha256 + "\n" + written.members[0].sha256 + "\n" + written.members[1].sha256 + "\n";
  CHECK(loaded.id() == "tiny@" + sha256_hex(digests).substr(0, 12));
  CHECK(model::model_id(dir.string()) == loaded.id());
  CHECK(loaded.id() != "tiny@" + written.weights_sha256.substr(0, 12));
  CHECK(model::describe_card(written).find("ensemble:      mean logits of 3 networks (weights.bin, member-2.bin, member-3.bin)") != std::string::npos);

  // A changed or missing member is refused, naming it.
  const std::string path = (dir / "member-3.bin").string();
  std::string bytes = read_file(path);
  bytes[bytes.size() - 1] ^= 1;
  write_file_atomic(path, bytes);
  CHECK(error_of([&] { model::load_model(dir.string()); }) ==
        "cannot load model '" + dir.string() + "': member-3.bin does not match the card's SHA-256 (got " + sha256_hex(bytes).substr(0, 16) +
            "..., expected " + written.members[1].sha256.substr(0, 16) + "...): corrupt or replaced");
  fs::remove(path);
  CHECK(error_of([&] { model::load_model(dir.string()); }) == "cannot load model '" + dir.string() + "': missing ensemble member member-3.bin");

  // Member files are plain names beside the card, each listed once, in a version 2 card.
  auto j = model::card_to_json(written);
  auto v1 = j;
  v1["format_version"] = 1;
  CHECK(error_of([&] { model::card_from_json(v1, "m.json"); }) ==
        "invalid model card 'm.json': weights.members needs format_version 2 (a version 1 reader would use the first network alone)");
  j["weights"]["members"][0]["file"] = "../elsewhere.bin";
  CHECK(error_of([&] { model::card_from_json(j, "m.json"); }) ==
        "invalid model card 'm.json': weights.members: '../elsewhere.bin' is not a file name beside the card");
  j["weights"]["members"][0]["file"] = "weights.bin";
  CHECK(error_of([&] { model::card_from_json(j, "m.json"); }) == "invalid model card 'm.json': weights.members lists 'weights.bin' twice");
  j["weights"]["members"][0]["file"] = "member-2.bin";
  j["weights"]["members"][0]["sha256"] = "abc";
  CHECK(error_of([&] { model::card_from_json(j, "m.json"); }) ==
        "invalid model card 'm.json': weights.members: the sha256 of 'member-2.bin' must be 64 lower-case hex digits");
}
