// The command line as scripts use it: exit codes, output formats, heatmaps, bad input.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/cli.h"
#include "support/requires.h"

namespace fs = std::filesystem;

using clitest::fixture;
using clitest::medattn;
using clitest::Run;
using clitest::slurp;

TEST_CASE("usage errors exit 2, help exits 0", "[cli]") {
  CHECK(medattn("").code == 2);
  CHECK(medattn("diagnose").code == 2);               // INPUT is required
  CHECK(medattn("diagnose --no-such-flag x").code == 2);
  CHECK(medattn("diagnose --format xml x").code == 2);
  CHECK(medattn("diagnose --window 40 x").code == 2);
  CHECK(medattn("--help").code == 0);
  const Run help = medattn("diagnose --help");
  CHECK(help.code == 0);
  CHECK(help.out.find("Example") != std::string::npos);
  const Run version = medattn("--version");
  CHECK(version.out.rfind("medattn ", 0) == 0);
  CHECK(version.out.find("\nLibTorch 1.13") != std::string::npos);
  CHECK(version.out.find("\nOpenCV 4.") != std::string::npos);
  CHECK(version.out.find("\nDCMTK 3.") != std::string::npos);
}

TEST_CASE("a missing or invalid model exits 3 with one line naming it", "[cli]") {
  const fs::path d = fixture();
  const fs::path err = d / "err.txt";
  const std::string img = "'" + (d / "ph/images/normal/normal_0000.png").string() + "'";
  CHECK(medattn("diagnose -m /nonexistent/model " + img, err.string()).code == 3);
  CHECK(slurp(err) == "error: cannot load model '/nonexistent/model': not a directory\n");
  fs::create_directories(d / "badmodel");
  fs::copy_file(d / "model/model.json", d / "badmodel/model.json", fs::copy_options::overwrite_existing);
  std::ofstream(d / "badmodel/weights.bin") << "MDATTNW1";
  CHECK(medattn("diagnose -m '" + (d / "badmodel").string() + "' " + img, err.string()).code == 3);
  const std::string bad = slurp(err);
  const std::string prefix = "error: cannot load model '" + (d / "badmodel").string() +
                             "': weights.bin does not match the card's SHA-256 (got ";
  CHECK(bad.rfind(prefix, 0) == 0);
  CHECK(bad.size() > prefix.size());
  CHECK(bad.substr(bad.size() - std::min(bad.size(), size_t{23})) == "): corrupt or replaced\n");
  CHECK(std::count(bad.begin(), bad.end(), '\n') == 1);
  CHECK(medattn("info -m /nonexistent/model", err.string()).code == 3);
  CHECK(slurp(err) == "error: cannot load model '/nonexistent/model': not a directory\n");
}

TEST_CASE("diagnose reports every good image and one error per bad one, exit 1", "[cli]") {
  const fs::path d = fixture();
  const fs::path in = d / "mixed";
  fs::remove_all(in);
  fs::create_directories(in / "sub");
  fs::copy_file(d / "ph/images/nodule/nodule_0000.png", in / "good.png");
  fs::copy_file(d / "ph/images/normal/normal_0000.png", in / "sub/good.png");
  cv::imwrite((in / "photo.jpg").string(), cv::imread((d / "ph/images/nodule/nodule_0001.png").string()));
  const std::string jpeg = slurp(in / "photo.jpg");
  std::ofstream(in / "truncated.jpg", std::ios::binary) << jpeg.substr(0, jpeg.size() / 2);
  std::ofstream(in / "empty.png") << "";
  std::ofstream(in / "text.png") << "this is not an image";
  std::ofstream(in / ".DS_Store") << "junk";
  const fs::path heat = d / "heat";
  const Run r = medattn("diagnose -m '" + (d / "model").string() + "' --format json --heatmaps '" + heat.string() + "' '" + in.string() + "'");
  CHECK(r.code == 1);
  const auto records = nlohmann::json::parse(r.out);
  REQUIRE(records.size() == 6);
  int good = 0, bad = 0;
  for (const auto& rec : records) {
    if (rec["error"].is_null()) {
      ++good;
      CHECK(rec["diagnosis"].is_string());
      CHECK(rec["probabilities"].size() == 3);
      const std::string hm = rec["heatmap"];
      REQUIRE(fs::exists(hm));
      CHECK(fs::path(hm).parent_path() == heat);
      // The raw map has the input's size; the overlay adds the caption strip and the legend.
      const cv::Mat overlay = cv::imread(hm, cv::IMREAD_UNCHANGED);
      CHECK(overlay.cols > rec["width"].get<int>());
      CHECK(overlay.rows > rec["height"].get<int>());
      const cv::Mat raw = cv::imread(rec["heatmap_raw"].get<std::string>(), cv::IMREAD_UNCHANGED);
      CHECK(raw.depth() == CV_16U);
      CHECK(raw.cols == rec["width"].get<int>());
      CHECK(raw.rows == rec["height"].get<int>());
    } else {
      ++bad;
      CHECK(rec["diagnosis"].is_null());
      CHECK(rec["error"].get<std::string>().find(rec["file"].get<std::string>()) != std::string::npos);
    }
  }
  CHECK(good == 3);
  CHECK(bad == 3);
  // Same file name in two folders: two heatmaps.
  std::string flat = in.relative_path().string();
  std::replace(flat.begin(), flat.end(), '/', '_');
  // Heatmap names: the path as given, flattened, then "-" and 8 hex digits of its hash.
  const auto named = [&](const std::string& prefix) {
    int n = 0;
    for (const auto& f : fs::directory_iterator(heat)) {
      const std::string name = f.path().filename().string();
      n += name.size() == prefix.size() + 9 + 12 && name.compare(0, prefix.size() + 1, prefix + "-") == 0 &&
           name.substr(name.size() - 12) == ".heatmap.png";
    }
    return n;
  };
  CHECK(named(flat + "_good") == 1);
  CHECK(named(flat + "_sub_good") == 1);
  int overlays = 0;
  for (const auto& f : fs::directory_iterator(heat)) overlays += f.path().string().find(".heatmap.png") != std::string::npos;
  CHECK(overlays == 3);
}

TEST_CASE("all inputs good exits 0, formats csv and jsonl, -o writes the file", "[cli]") {
  const fs::path d = fixture();
  const std::string img = "-m '" + (d / "model").string() + "' '" + (d / "ph/images/consolidation").string() + "'";
  const Run csv = medattn("diagnose --format csv " + img);
  CHECK(csv.code == 0);
  CHECK(csv.out.rfind("file,diagnosis,probability,p_normal,p_nodule,p_consolidation,heatmap,error,model,abstained,ood_score,warning,study_uid,series_uid,sop_uid,patient_id,accession_number,modality,dicom_sc,dicom_sr\n", 0) == 0);
  const fs::path out = d / "out.jsonl";
  const Run jl = medattn("diagnose --format jsonl -o '" + out.string() + "' " + img);
  CHECK(jl.code == 0);
  CHECK(jl.out.empty());
  int lines = 0;
  std::ifstream f(out);
  for (std::string line; std::getline(f, line); ++lines) CHECK(nlohmann::json::parse(line)["error"].is_null());
  CHECK(lines == 8);
  CHECK(medattn("diagnose -o /nonexistent/dir/out.json " + img).code == 3);
}

TEST_CASE("info prints the card", "[cli]") {
  const fs::path d = fixture();
  const Run r = medattn("info -m '" + (d / "model").string() + "'");
  CHECK(r.code == 0);
  CHECK(r.out.find("classes:       normal, nodule, consolidation") != std::string::npos);
  const Run j = medattn("info --json -m '" + (d / "model").string() + "'");
  CHECK(nlohmann::json::parse(j.out)["training"]["command"].get<std::string>().rfind("medattn train ", 0) == 0);
}

TEST_CASE("every shared DICOM and NIfTI file and a chest X-ray JPEG get a heatmap of their size", "[cli][shared]") {
  const fs::path shared = MEDATTN_SHARED_DATA;
  MEDATTN_NEEDS(fs::exists(shared / "dicom") && fs::exists(shared / "nifti"), (shared / "dicom").string() + " and nifti");
  const fs::path d = fixture();
  const fs::path heat = d / "shared-heat";
  const Run r = medattn("diagnose -m '" + (d / "model").string() + "' --format json --heatmaps '" + heat.string() +
                        "' '" + (shared / "dicom").string() + "' '" + (shared / "nifti").string() + "' '" +
                        (shared / "chest_xray_224/train/NORMAL/IM-0115-0001.jpeg").string() + "'");
  CHECK(r.code == 0);
  const auto records = nlohmann::json::parse(r.out);
  CHECK(records.size() == 12);  // 8 DICOM, 3 NIfTI, 1 JPEG; the licence and SOURCE texts are skipped
  for (const auto& rec : records) {
    INFO(rec.dump());
    REQUIRE(rec["error"].is_null());
    // The raw map has the image's size (the overlay adds its caption strip and legend).
    const cv::Mat raw = cv::imread(rec["heatmap_raw"].get<std::string>(), cv::IMREAD_UNCHANGED);
    CHECK(raw.cols == rec["width"].get<int>());
    CHECK(raw.rows == rec["height"].get<int>());
  }
}

TEST_CASE("evaluate prints the contract's keys, heatmap metrics and a ROC plot", "[cli]") {
  const fs::path d = fixture();
  const fs::path roc = d / "roc.png";
  const Run r = medattn("evaluate -m '" + (d / "model").string() + "' '" + (d / "ph/images").string() +
                        "' --masks '" + (d / "ph/masks").string() + "' --method saliency --format json --roc '" +
                        roc.string() + "'");
  CHECK(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"n", "classes", "accuracy", "auc", "sensitivity", "specificity", "f1", "ece", "confusion",
                          "balanced_accuracy", "auc_ci95", "accuracy_ci95", "pointing_game", "heatmap_iou",
                          "deletion_auc", "insertion_auc"}) {
    INFO(key);
    CHECK(j.contains(key));
  }
  CHECK(j["n"] == 24);
  // Every figure again by hand, from the confusion matrix (rows: truth, columns: diagnosis),
  // to the 6 decimals the JSON keeps. Three classes: sensitivity and specificity are macro means.
  const auto& m = j["confusion"];
  REQUIRE(m.size() == 3);
  int total = 0, trace = 0;
  double recall_sum = 0, specificity_sum = 0, f1_sum = 0;
  for (int c = 0; c < 3; ++c) {
    int row = 0, column = 0;
    for (int k = 0; k < 3; ++k) {
      row += m[c][k].get<int>();
      column += m[k][c].get<int>();
    }
    CHECK(row == 8);  // the phantom set: 8 images per class
    total += row;
    const int tp = m[c][c].get<int>();
    trace += tp;
    const double recall = static_cast<double>(tp) / row;
    const double precision = column > 0 ? static_cast<double>(tp) / column : 0.0;
    const int negatives = 24 - row, false_positives = column - tp;
    recall_sum += recall;
    specificity_sum += static_cast<double>(negatives - false_positives) / negatives;
    f1_sum += precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
    const std::string name = j["classes"][c];
    CHECK(j["per_class"][name]["recall"].get<double>() == Approx(recall).margin(1e-6));
    CHECK(j["per_class"][name]["precision"].get<double>() == Approx(precision).margin(1e-6));
  }
  CHECK(total == 24);
  CHECK(j["accuracy"].get<double>() == Approx(trace / 24.0).margin(1e-6));
  CHECK(j["balanced_accuracy"].get<double>() == Approx(recall_sum / 3).margin(1e-6));
  CHECK(j["sensitivity"].get<double>() == Approx(recall_sum / 3).margin(1e-6));
  CHECK(j["specificity"].get<double>() == Approx(specificity_sum / 3).margin(1e-6));
  CHECK(j["f1"].get<double>() == Approx(f1_sum / 3).margin(1e-6));
  CHECK(j["macro_f1"] == j["f1"]);
  // Intervals hold their point estimate; the heatmap figures are shares or areas in [0,1].
  for (const char* key : {"auc", "accuracy"}) {
    INFO(key);
    const double v = j[key], lo = j[std::string(key) + "_ci95"][0], hi = j[std::string(key) + "_ci95"][1];
    CHECK(lo <= v + 1e-4);
    CHECK(v <= hi + 1e-4);
    CHECK(lo < hi);
  }
  for (const char* key : {"pointing_game", "heatmap_iou", "deletion_auc", "insertion_auc", "ece"}) {
    INFO(key);
    CHECK(j[key].get<double>() >= 0.0);
    CHECK(j[key].get<double>() <= 1.0);
  }
  CHECK(j["heatmap_images"] == 24);
  CHECK(j["method"] == "saliency");
  // Chance ECE of a calibrated model: a mean and a 95th percentile above it.
  REQUIRE(j.contains("ece_if_calibrated"));
  CHECK(j["ece_if_calibrated"]["p95"].get<double>() >= j["ece_if_calibrated"]["mean"].get<double>());
  CHECK(j["ece_if_calibrated"]["mean"].get<double>() >= 0.0);
  CHECK(j["masked_images"] == 16);  // 8 nodules + 8 consolidations; normal masks are empty
  CHECK(j["classes"] == nlohmann::json::parse(R"(["normal","nodule","consolidation"])"));
  const cv::Mat plot = cv::imread(roc.string());
  CHECK(plot.cols == 640);
  // A class the model does not know is an error that names it.
  fs::create_directories(d / "odd/cat");
  fs::copy_file(d / "ph/images/normal/normal_0000.png", d / "odd/cat/x.png", fs::copy_options::overwrite_existing);
  const fs::path err = d / "eval_err.txt";
  CHECK(medattn("evaluate -m '" + (d / "model").string() + "' '" + (d / "odd").string() + "'", err.string()).code == 2);
  CHECK(slurp(err).find("cat") != std::string::npos);
}

TEST_CASE("test-time flips on the command line: averaged views, named in the JSON, unknown flips refused", "[cli][tta]") {
  const fs::path d = fixture();
  const std::string model = "-m '" + (d / "model").string() + "' ";
  const std::string data = "'" + (d / "ph/images").string() + "'";
  const Run plain = medattn("evaluate " + model + data + " --format json");
  const Run flipped = medattn("evaluate " + model + data + " --format json --tta hflip,vflip");
  REQUIRE(plain.code == 0);
  REQUIRE(flipped.code == 0);
  CHECK(nlohmann::json::parse(plain.out)["tta"] == nlohmann::json::array());
  CHECK(nlohmann::json::parse(flipped.out)["tta"] == nlohmann::json::parse(R"(["hflip","vflip"])"));
  const std::string img = " '" + (d / "ph/images/nodule/nodule_0000.png").string() + "'";
  const Run one = medattn("diagnose --format json " + model + img);
  const Run four = medattn("diagnose --format json --tta hflip,vflip " + model + img);
  REQUIRE(one.code == 0);
  REQUIRE(four.code == 0);
  // The phantom model was trained without flips, so the flipped views see something else.
  CHECK(nlohmann::json::parse(one.out)[0]["probability"] != nlohmann::json::parse(four.out)[0]["probability"]);
  const fs::path err = d / "tta_err.txt";
  CHECK(medattn("diagnose --tta rot90 " + model + img, err.string()).code == 2);
  CHECK(slurp(err).find("unknown flip 'rot90'") != std::string::npos);
}

TEST_CASE("a pipe gets the table only, --preview forces the picture", "[cli][terminal]") {
  const fs::path d = fixture();
  const std::string img = "'" + (d / "ph/images/nodule/nodule_0000.png").string() + "'";
  const std::string model = "-m '" + (d / "model").string() + "' ";
  const Run plain = medattn("diagnose " + model + img);
  CHECK(plain.code == 0);
  CHECK(plain.out.find('\x1b') == std::string::npos);
  CHECK(plain.out.find("\u2580") == std::string::npos);
  const Run forced = medattn("diagnose --preview --preview-width 20 " + model + img);
  CHECK(forced.code == 0);
  CHECK(forced.out.find("\u2580") != std::string::npos);
  CHECK(forced.out.find("map regions: ") != std::string::npos);
  CHECK(forced.out.find("low ") != std::string::npos);
  const Run ascii = medattn("diagnose --preview --ascii --preview-width 20 " + model + img);
  CHECK(ascii.out.find('\x1b') == std::string::npos);
  CHECK(ascii.out.find("low .:-=+*#%@ high") != std::string::npos);
}

TEST_CASE("in a terminal (tmux) the diagnosis is followed by its half-block heatmap", "[cli][terminal][tmux]") {
  MEDATTN_NEEDS(testdeps::has_program("tmux"), "tmux");
  const fs::path d = fixture();
  const std::string session = "medattn_test_" + std::to_string(::getpid());
  const fs::path done = d / "tmux_done";
  // The pane signals a tmux channel when medattn has finished; the test waits on that event
  // (however long it takes), then reads the pane, which stays open until the session is killed.
  const std::string channel = session + "_done";
  const std::string cmd = std::string(MEDATTN_BINARY) + " diagnose -m '" + (d / "model").string() + "' '" +
                          (d / "ph/images/nodule/nodule_0000.png").string() + "' 2>/dev/null; touch '" +
                          done.string() + "'; tmux wait-for -S " + channel + "; sleep 600";
  REQUIRE(std::system(("TERM=xterm-256color tmux new-session -d -s " + session + " -x 100 -y 60 \"" + cmd + "\"").c_str()) == 0);
  REQUIRE(std::system(("tmux wait-for " + channel).c_str()) == 0);
  const fs::path pane = d / "pane.txt";
  std::system(("tmux capture-pane -p -t " + session + " > '" + pane.string() + "'").c_str());
  std::system(("tmux kill-session -t " + session + " 2>/dev/null").c_str());
  const std::string text = slurp(pane);
  INFO(text);
  CHECK(fs::exists(done));
  CHECK(text.find("nodule_0000.png") != std::string::npos);
  CHECK(text.find("\u2580") != std::string::npos);
  CHECK(text.find("map regions: ") != std::string::npos);
  CHECK(text.find("high") != std::string::npos);
}

TEST_CASE("the same inputs, model and thread count give byte-identical JSON and heatmaps", "[cli]") {
  const fs::path d = fixture();
  std::string outputs[2];
  for (int i = 0; i < 2; ++i) {
    const fs::path heat = d / ("determinism-" + std::to_string(i));
    const Run r = medattn("diagnose -m '" + (d / "model").string() + "' --format json --threads 2 --workers 3 --heatmaps '" +
                          heat.string() + "' '" + (d / "ph/images").string() + "'");
    REQUIRE(r.code == 0);
    // Heatmap paths differ by folder only; compare the rest byte for byte.
    std::string text = r.out;
    for (size_t p; (p = text.find(heat.string())) != std::string::npos;) text.replace(p, heat.string().size(), "HEAT");
    outputs[i] = text;
  }
  CHECK(outputs[0] == outputs[1]);
  for (const auto& f : fs::directory_iterator(d / "determinism-0")) {
    CHECK(slurp(f.path()) == slurp(d / "determinism-1" / f.path().filename()));
  }
}

TEST_CASE("the shipped skin model reads covariates from --clinical and says when they are missing", "[cli][shared][clinical]") {
  const fs::path shared = fs::path(MEDATTN_SHARED_DATA) / "ham10000";
  MEDATTN_NEEDS(fs::exists(shared / "metadata.csv"), (shared / "metadata.csv").string());
  const std::string model = (fs::path(MEDATTN_SOURCE_DIR) / "models" / "skin-ham10000").string();
  const std::string images = "'" + (shared / "images/ISIC_0027419.jpg").string() + "' '" +
                             (shared / "images/ISIC_0025030.jpg").string() + "' '" +
                             (shared / "images/ISIC_0026769.jpg").string() + "'";
  const Run with = medattn("diagnose -m '" + model + "' --format json --clinical '" + (shared / "metadata.csv").string() +
                           "' " + images);
  REQUIRE(with.code == 0);
  const auto records = nlohmann::json::parse(with.out);
  REQUIRE(records.size() == 3);
  for (const auto& rec : records) {
    INFO(rec.dump());
    CHECK(rec["clinical_missing"].empty());  // the metadata has age 80, male, scalp for all three
    double sum = 0;
    for (const char* name : {"age", "sex", "localization"}) {
      REQUIRE(rec["clinical_attention"].contains(name));
      const double share = rec["clinical_attention"][name].get<double>();
      CHECK(share >= 0.0);
      sum += share;
    }
    CHECK(sum <= 1.0);
    CHECK(rec["probabilities"].size() == 7);
  }
  const fs::path err = fixture() / "clinical-missing.err";
  const Run without = medattn("diagnose -m '" + model + "' --format json " + images, err.string());
  REQUIRE(without.code == 0);
  for (const auto& rec : nlohmann::json::parse(without.out)) {
    CHECK(rec["clinical_missing"] == nlohmann::json::parse(R"(["age","sex","localization"])"));
  }
  CHECK(slurp(err).find("every covariate is treated as missing") != std::string::npos);
}

TEST_CASE("train --no-augment trains without augmentation and the card says so", "[cli][train]") {
  // The flag's handler once held a reference to a variable of the function that registered it,
  // gone by the time the flag was parsed: the flag did nothing and the card described the
  // augmentation that had run.
  const fs::path d = fixture();
  const fs::path work = d / "no-augment";
  fs::create_directories(work);
  auto train = [&](const std::string& out, const std::string& extra) {
    const Run r = medattn("train '" + (d / "ph/images").string() + "' --out '" + (work / out).string() +
                          "' --classes normal,nodule,consolidation --epochs 1 --image-size 32 --stem 8 --dim 16 --depth 1"
                          " --heads 2 --batch-size 8 --threads 1 --seed 3" + extra);
    REQUIRE(r.code == 0);
    std::ifstream card(work / out / "model.json");
    return nlohmann::json::parse(card)["training"]["augment"];
  };
  const auto with = train("with", "");
  const auto without = train("without", " --no-augment");
  CHECK(with.is_string());
  CHECK(without == false);
  // Augmentation draws random numbers, so the same seed trains other weights without it.
  const bool other_weights = slurp(work / "with/weights.bin") != slurp(work / "without/weights.bin");
  CHECK(other_weights);
}
