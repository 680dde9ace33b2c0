// Writes the fuzzers' seed corpora from files the project makes itself: small valid inputs
// of every format each target reads (the image target's from the input-format registry). Usage: fuzz_seeds DIR  (creates DIR/<target>/...)
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <nifti1_io.h>
#include <zip.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "io/formats.h"
#include "model/card.h"
#include "model/net.h"

namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The front door's corpus: a sample of every format the input-format registry can make
// (io/formats.h), so that a format added there is fuzzed without an edit here, plus a few
// variants of the common ones.
void images(const fs::path& dir) {
  fs::create_directories(dir);
  for (const auto& format : medattn::io::input_formats()) {
    if (format.write_sample != nullptr && !format.extensions.empty())
      format.write_sample((dir / ("sample" + format.extensions.front())).string());
  }
  cv::Mat grey(16, 16, CV_8UC1), colour(16, 16, CV_8UC3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      grey.at<uint8_t>(y, x) = static_cast<uint8_t>(16 * x + y);
      colour.at<cv::Vec3b>(y, x) = {static_cast<uint8_t>(x * 9), static_cast<uint8_t>(y * 9), 77};
    }
  }
  cv::imwrite((dir / "grey.png").string(), grey);
  cv::imwrite((dir / "colour.jpg").string(), colour);
}

// The registry's sample of `format` written to `path`.
void sample(medattn::io::FileFormat format, const fs::path& path) {
  fs::create_directories(path.parent_path());
  medattn::io::find_input_format(format)->write_sample(path.string());
}

// A variant of the registry's DICOM sample at `from`: another photometric interpretation,
// `frames` copies of its frame, saved in `xfer`.
void dicom_variant(const fs::path& from, const fs::path& to, int frames, const char* photometric, E_TransferSyntax xfer) {
  DcmFileFormat file;
  file.loadFile(from.string().c_str());
  DcmDataset* ds = file.getDataset();
  ds->putAndInsertString(DCM_PhotometricInterpretation, photometric);
  if (frames > 1) {
    const Uint16* frame = nullptr;
    unsigned long count = 0;
    ds->findAndGetUint16Array(DCM_PixelData, frame, &count);
    std::vector<Uint16> px;
    for (int f = 0; f < frames; ++f) px.insert(px.end(), frame, frame + count);
    ds->putAndInsertString(DCM_NumberOfFrames, std::to_string(frames).c_str());
    ds->putAndInsertUint16Array(DCM_PixelData, px.data(), px.size());
  }
  if (DcmXfer(xfer).isEncapsulated()) ds->chooseRepresentation(xfer, nullptr);
  file.saveFile(to.string().c_str(), xfer);
}

// A float volume of `shape` (the registry's NIfTI sample is int16).
void nifti(const fs::path& dir, const std::string& name, std::vector<int> shape, int datatype) {
  int dims[8] = {static_cast<int>(shape.size()), 1, 1, 1, 1, 1, 1, 1};
  for (size_t d = 0; d < shape.size(); ++d) dims[d + 1] = shape[d];
  nifti_image* nim = nifti_make_new_nim(dims, datatype, 1);
  for (size_t i = 0; i < nim->nvox; ++i) {
    if (datatype == DT_FLOAT32) static_cast<float*>(nim->data)[i] = static_cast<float>(i) * 0.5f;
  }
  fs::create_directories(dir);
  nifti_set_filenames(nim, (dir / name).string().c_str(), 0, 1);
  nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
  nifti_image_write(nim);
  nifti_image_free(nim);
}

std::string npy(const std::string& descr, const std::string& shape, const std::string& data) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

void npz(const fs::path& path, bool compress) {
  fs::create_directories(path.parent_path());
  std::vector<std::pair<std::string, std::string>> members = {
      {"train_images.npy", npy("|u1", "(2, 4, 4)", std::string(32, '\x40'))},
      {"train_labels.npy", npy("|u1", "(2, 1)", std::string("\x00\x01", 2))}};
  int err = 0;
  zip_t* z = zip_open(path.string().c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  for (auto& [name, bytes] : members) {
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    const zip_int64_t idx = zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE);
    zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  zip_close(z);
}

void model(const fs::path& dir) {
  medattn::model::ModelCard card;
  card.name = "seed";
  card.classes = {"a", "b"};
  card.preprocess.image_size = 16;
  card.arch.stem_channels = {4, 8};
  card.arch.dim = 8;
  card.arch.depth = 1;
  card.arch.heads = 2;
  auto net = medattn::model::build_net(card);
  const fs::path tmp = dir / "tmp-model";
  medattn::model::save_model(tmp.string(), card, net);
  write(dir / "tiny", slurp(tmp / "model.json") + std::string(1, '\0') + slurp(tmp / "weights.bin"));
  // The same without the hash, so that mutations of the weights reach the tensor checks.
  auto j = nlohmann::json::parse(slurp(tmp / "model.json"));
  j["weights"].erase("sha256");
  write(dir / "tiny-unhashed", j.dump() + std::string(1, '\0') + slurp(tmp / "weights.bin"));
  fs::remove_all(tmp);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  DcmRLEEncoderRegistration::registerCodecs();
  DcmRLEDecoderRegistration::registerCodecs();
  images(root / "image");
  sample(medattn::io::FileFormat::kDicom, root / "dicom" / "ct.dcm");
  dicom_variant(root / "dicom" / "ct.dcm", root / "dicom" / "mono1-big-endian.dcm", 1, "MONOCHROME1", EXS_BigEndianExplicit);
  dicom_variant(root / "dicom" / "ct.dcm", root / "dicom" / "multiframe-rle.dcm", 3, "MONOCHROME2", EXS_RLELossless);
  sample(medattn::io::FileFormat::kNifti, root / "nifti" / "vol.nii");
  nifti(root / "nifti", "vol4d.nii.gz", {4, 4, 2, 2}, DT_FLOAT32);
  for (const char* variant : {"mono1-big-endian.dcm", "multiframe-rle.dcm"})
    fs::copy_file(root / "dicom" / variant, root / "image" / variant);
  npz(root / "npz" / "stored.npz", false);
  npz(root / "npz" / "deflated.npz", true);
  write(root / "csv" / "simple.csv", "path,label\nimages/a.png,normal\nimages/b.png,pneumonia\n");
  write(root / "csv" / "quoted.csv", "\xEF\xBB\xBFpath,label,split,group\r\n\"x,1.png\",\"a \"\"b\"\"\",train,p1\r\ny.png,a,val,p2\r\n");
  model(root / "model");
  std::printf("seed corpora written to %s\n", root.string().c_str());
  return 0;
}
