// The input-format registry (io/formats.h): every row is consistent, and every row's sample
// file is found by content and read through read_image(), so that a format added to the
// registry is tested end to end by its row alone.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "core/error.h"
#include "core/text.h"
#include "io/formats.h"
#include "io/image.h"
#include "io/inputs.h"
#include "support/helpers.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace medattn::io;
using medattn::ErrorKind;
using medattn::testing::TempDir;
using medattn::testing::require_error;

TEST_CASE("input formats: every row has a unique id and name, a content test and lower-case extensions", "[io][formats]") {
  std::set<FileFormat> ids;
  std::set<std::string> names;
  std::set<std::string> extensions;
  for (const InputFormat& f : input_formats()) {
    INFO(f.name);
    CHECK(f.id != FileFormat::kUnknown);
    CHECK(ids.insert(f.id).second);
    CHECK(names.insert(f.name).second);
    CHECK(std::string(f.display) != "");
    CHECK(f.sniff != nullptr);
    CHECK((f.read != nullptr || std::string(f.refusal) != ""));
    CHECK(find_input_format(f.id) == &f);
    CHECK(std::string(format_name(f.id)) == f.name);
    CHECK(std::string(display_name(f.id)) == f.display);
    for (const std::string& ext : f.extensions) {
      CHECK(ext.size() >= 2);
      CHECK(ext[0] == '.');
      CHECK(medattn::lower(ext) == ext);
      CHECK(extensions.insert(ext).second);  // one format per extension
    }
  }
  CHECK(find_input_format(FileFormat::kUnknown) == nullptr);
  CHECK(std::string(format_name(FileFormat::kUnknown)) == "unknown");
  CHECK(std::string(display_name(FileFormat::kUnknown)) == "image");
}

TEST_CASE("input formats: the lists in texts and the folder walk come from the rows", "[io][formats]") {
  CHECK(supported_formats() == "DICOM, PNG, JPEG, TIFF, BMP, NIfTI");
  CHECK(image_extensions() == std::vector<std::string>{".nii.gz", ".dicom", ".jpeg", ".tiff", ".dcm", ".ima", ".png",
                                                       ".jpg", ".tif", ".bmp", ".nii"});
  // Longest first, so that "x.nii.gz" loses ".nii.gz", not nothing.
  CHECK(heatmap_stem({"scans/x.nii.gz", "scans", "x.nii.gz"}) == "scans_x");
  CHECK(heatmap_stem({"scans/y.NII", "scans", "y.NII"}) == "scans_y");
  CHECK(has_image_extension("a/b/scan.IMA"));
  CHECK(!has_image_extension("a/b/scan.jp2"));  // JPEG 2000 is recognised by content only
  CHECK(!has_image_extension("notes.txt"));
}

TEST_CASE("input formats: every row's sample is sniffed as that row and read", "[io][formats]") {
  TempDir dir;
  int samples = 0;
  for (const InputFormat& f : input_formats()) {
    if (f.write_sample == nullptr) continue;
    INFO(f.name);
    REQUIRE(!f.extensions.empty());
    const std::string path = dir.file("sample" + f.extensions.front());
    f.write_sample(path);
    // Named without an extension too: the content decides, never the name.
    const std::string bare = dir.file("no_extension_" + std::to_string(static_cast<int>(f.id)));
    fs::copy_file(path, bare);
    for (const std::string& p : {path, bare}) {
      CHECK(sniff_format(p) == f.id);
      const Image image = read_image(p);
      CHECK(image.format == f.id);
      CHECK(image.pixels.rows > 0);
      CHECK(image.pixels.cols > 0);
    }
    ++samples;
  }
  CHECK(samples == 7);  // every readable row can make one
}

TEST_CASE("input formats: a recognised but unreadable format is refused with its row's reason", "[io][formats]") {
  TempDir dir;
  const std::string path = dir.file("scan");
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string("\xFF\x4F\xFF\x51", 4) << std::string(64, '\0');
  }
  CHECK(sniff_format(path) == FileFormat::kJpeg2000);
  require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                "cannot read image '" + path + "': JPEG 2000 is not supported by this build");
}
