// Finding inputs and naming their heatmaps.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "io/inputs.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using medattn::io::InputItem;
using medattn::io::heatmap_stem;

TEST_CASE("heatmap names follow the path as given and cannot escape the folder", "[io][inputs]") {
  CHECK(heatmap_stem({"", "path/as/given.png", ""}) == "path_as_given");
  CHECK(heatmap_stem({"", "scans", "a/chest.dcm"}) == "scans_a_chest");
  CHECK(heatmap_stem({"", "/abs/x.nii.gz", ""}) == "abs_x");
  CHECK(heatmap_stem({"", "../up/y.PNG", ""}) == "up_y");
  CHECK(heatmap_stem({"", "./.hidden.png", ""}) == "hidden");
  CHECK(heatmap_stem({"", "dir", "IM0001"}) == "dir_IM0001");
  CHECK(heatmap_stem({"", "we ird/na$me.jpg", ""}) == "we_ird_na_me");
  CHECK(heatmap_stem({"", "..", ""}) == "image");
  // Two inputs with the same file name in different folders never share a name.
  CHECK(heatmap_stem({"", "a/x.png", ""}) != heatmap_stem({"", "b/x.png", ""}));
}

TEST_CASE("directories are searched recursively, non-images are skipped with a notice", "[io][inputs]") {
  const fs::path dir = medattn::testing::scratch_dir("inputs_test");
  fs::create_directories(dir / "sub");
  auto write = [&](const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; };
  write(dir / "b.png", "not really a png");                      // claims an image: kept, fails later
  write(dir / "sub" / "a.dcm", std::string(128, '\0') + "DICM"); // content says DICOM
  write(dir / "noext", std::string(128, '\0') + "DICM");         // DICOM without an extension
  write(dir / ".DS_Store", "junk");
  write(dir / "notes.txt", "hello");
  const auto found = medattn::io::expand_inputs({dir.string(), (dir / "missing.png").string(), (dir / "notes.txt").string()});
  REQUIRE(found.items.size() == 4);
  CHECK(found.items[0].relative == "b.png");
  CHECK(found.items[1].relative == "noext");
  CHECK(found.items[2].relative == "sub/a.dcm");
  CHECK(found.items[3].relative.empty());  // an explicit file is always kept
  CHECK(found.missing == std::vector<std::string>{(dir / "missing.png").string()});
  REQUIRE(found.notices.size() == 2);
  CHECK(found.notices[0] == "skipped '" + (dir / ".DS_Store").string() + "': not an image");
  CHECK(found.notices[1] == "skipped '" + (dir / "notes.txt").string() + "': not an image");
}

TEST_CASE("the walker yields inputs lazily in sorted-path order and reads '-' from a stream", "[io][inputs]") {
  const fs::path dir = medattn::testing::scratch_dir("walker_test");
  fs::create_directories(dir / "a" / "z");
  for (const char* f : {"a.png", "a/z/y.png", "a/b.png", "a-c.png", "b.png"}) std::ofstream(dir / f) << "x";
  fs::create_directory_symlink(dir / "a", dir / "link");  // symlinked folders are not followed
  std::istringstream paths("one.png\n\n" + (dir / "b.png").string() + "\r\n");
  medattn::io::InputWalker walker({dir.string(), "-", (dir / "gone.png").string()}, &paths);
  std::vector<std::string> seen;
  medattn::io::InputWalker::Event e;
  while (walker.next(e)) {
    using K = medattn::io::InputWalker::Kind;
    seen.push_back((e.kind == K::kItem ? "item " : e.kind == K::kMissing ? "missing " : "skipped ") +
                   (e.item.relative.empty() ? e.item.path : e.item.relative));
  }
  // Sorted as whole relative paths: "a-c.png" < "a.png" < "a/..." ('-' < '.' < '/').
  CHECK(seen == std::vector<std::string>{"item a-c.png", "item a.png", "item a/b.png", "item a/z/y.png", "item b.png",
                                         "missing one.png", "item " + (dir / "b.png").string(),
                                         "missing " + (dir / "gone.png").string()});
  fs::remove_all(dir);
}
