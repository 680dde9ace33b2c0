#!/usr/bin/env python3
"""`make mutants`: does the test suite catch deliberate bugs?

Copies the working tree (tracked and untracked files that git does not ignore) into
build-mutants/src, builds it once in build-mutants/build, checks that the tests each mutant
runs pass on the unchanged code, then applies each mutant below one at a time: one exact
source substitution, a rebuild (only what the change touches), the tests that should notice,
and the file put back. A mutant is killed when those tests fail. Prints a table and ends with
`mutants: K killed, S survived`; exits 1 when any survived, 2 when the baseline fails or a
mutant no longer applies (its source line changed: update the table).

Usage: python3 scripts/mutants.py [--only NAME[,NAME...]] [--jobs N]
Slow (a rebuild per mutant); not part of `make test`.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "build-mutants")
SRC = os.path.join(WORK, "src")
BUILD = os.path.join(WORK, "build")

# name, file, exact text, replacement, Catch test spec (',' = or; '[a][b]' = both tags)
MUTANTS = [
    ("auc-inverted", "src/eval/metrics.cpp",
     "  return u / (static_cast<double>(n_pos) * static_cast<double>(n_neg));",
     "  return 1.0 - u / (static_cast<double>(n_pos) * static_cast<double>(n_neg));",
     "[eval]"),
    ("bootstrap-no-resamples", "src/eval/metrics.cpp",
     "  for (int r = 0; r < resamples; ++r) {\n    std::vector<size_t> idx(n);\n    for (auto& i : idx) i = pick(rng);",
     "  for (int r = 0; r < resamples; ++r) {\n    std::vector<size_t> idx(n);\n    for (size_t i = 0; i < n; ++i) idx[i] = i;",
     "[eval]"),
    ("rollout-without-identity", "src/explain/rollout.cpp",
     "    auto with_residual = (fused + eye) * 0.5;",
     "    auto with_residual = fused;",
     "[explain]"),
    ("saliency-signed", "src/explain/methods.cpp",
     "      auto magnitude = g.detach().abs().sum(1, /*keepdim=*/true);",
     "      auto magnitude = g.detach().sum(1, /*keepdim=*/true);",
     "[explain]"),
    ("letterbox-crop-skipped", "src/preprocess/preprocess.cpp",
     "  cv::resize(full(lb.content), out, cv::Size(lb.original_width, lb.original_height), 0, 0,",
     "  cv::resize(full, out, cv::Size(lb.original_width, lb.original_height), 0, 0,",
     "[preprocess]"),
    ("unexpected-tensors-ignored", "src/model/net.cpp",
     "    if (it == expected.end()) throw fail(\"unexpected tensor '\" + name + \"' (not in this architecture)\");",
     "    if (it == expected.end()) {\n      std::vector<float> skipped(numel);\n"
     "      in.read(skipped.data(), numel * sizeof(float));\n      continue;\n    }",
     "[model]"),
    ("batch-dependent-linear", "src/model/net.cpp",
     "  if (l->is_training()) return l(x);",
     "  if (true) return l(x);",
     "[model]"),
    ("monochrome1-not-inverted", "src/io/dicom.cpp",
     "  image.invert = photometric == \"MONOCHROME1\";",
     "  image.invert = false;",
     "[dicom]"),
    ("dicom-intercept-ignored", "src/io/dicom.cpp",
     "    if (dataset->findAndGetFloat64(DCM_RescaleIntercept, intercept).bad() ||",
     "    if (true ||",
     "[dicom]"),
    ("png-not-recognised", "src/io/sniff.cpp",
     "  if (starts_with(head, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) return FileFormat::kPng;",
     "  if (starts_with(head, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0B})) return FileFormat::kPng;",
     "[image]"),
    ("nifti-slope-ignored", "src/io/nifti.cpp",
     "  const double slope = nim->scl_slope;",
     "  const double slope = 0.0;",
     "[nifti]"),
    ("npz-big-endian-accepted", "src/io/npz.cpp",
     "  if (!h.descr.empty() && h.descr[0] == '>' && dtype_itemsize(h.descr) > 1)",
     "  if (false)",
     "[npz]"),
    ("csv-doubled-quote-kept", "src/io/csv.cpp",
     "            if (i + 1 < text.size() && text[i + 1] == '\"') {\n              field += '\"';",
     "            if (i + 1 < text.size() && text[i + 1] == '\"') {\n              field += \"\\\"\\\"\";",
     "[dataset]"),
    ("merge-without-dedup", "src/pipeline/batch.cpp",
     "      if (by_file.count(line.file)) {\n        report.duplicates.push_back(line.file);",
     "      if (false) {\n        report.duplicates.push_back(line.file);",
     "[batch]"),
    ("resume-not-skipping", "src/pipeline/diagnose.cpp",
     "    if (options_.skip_files.count(item.path)) {",
     "    if (false) {",
     "[batch]"),
]


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def copy_tree():
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout.split("\0")
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src):
            continue
        dst = os.path.join(SRC, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(src, "rb") as f:
            data = f.read()
        if os.path.exists(dst):
            with open(dst, "rb") as f:
                if f.read() == data:
                    continue  # unchanged: keep its timestamp, so nothing rebuilds for it
        with open(dst, "wb") as f:
            f.write(data)


def build(jobs):
    r = run(["cmake", "--build", BUILD, "-j", str(jobs), "--target", "medattn_tests", "medattn"])
    return r.returncode == 0, r.stdout


def tests_fail(spec):
    r = run([os.path.join(BUILD, "medattn_tests"), spec], cwd=BUILD)
    return r.returncode != 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated mutant names")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m[0] in args.only.split(",")]
    os.makedirs(SRC, exist_ok=True)
    copy_tree()
    shared = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
    r = run(["cmake", "-S", SRC, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release", "-DMEDATTN_SHARED_DATA=" + shared])
    if r.returncode != 0:
        print(r.stdout)
        return 2
    ok, log = build(args.jobs)
    if not ok:
        print(log[-4000:])
        print("mutants: the unchanged tree does not build")
        return 2
    for spec in sorted({m[4] for m in chosen}):
        if tests_fail(spec):
            print(f"mutants: the tests {spec} fail on the unchanged tree; fix them first")
            return 2
    rows, killed, survived = [], 0, 0
    for name, rel, old, new, spec in chosen:
        path = os.path.join(SRC, rel)
        with open(path) as f:
            original = f.read()
        if original.count(old) != 1:
            print(f"mutants: '{name}' does not apply: its text occurs {original.count(old)} times in {rel}")
            return 2
        t0 = time.time()
        try:
            with open(path, "w") as f:
                f.write(original.replace(old, new))
            ok, log = build(args.jobs)
            if not ok:
                print(log[-3000:])
                print(f"mutants: '{name}' does not compile; fix the table")
                return 2
            dead = tests_fail(spec)
        finally:
            with open(path, "w") as f:
                f.write(original)
        killed += dead
        survived += not dead
        rows.append((name, rel, spec, "killed" if dead else "SURVIVED", time.time() - t0))
    build(args.jobs)  # leave the scratch build matching the tree
    print(f"{'mutant':28} {'file':32} {'tests':12} {'result':9} seconds")
    for name, rel, spec, result, secs in rows:
        print(f"{name:28} {rel:32} {spec:12} {result:9} {secs:7.0f}")
    print(f"mutants: {killed} killed, {survived} survived")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
