#!/usr/bin/python3
"""`make bench`: medattn against the Python reference (bench/reference.py), side by side.

Prints one `key value` line per figure (and `# ...` lines saying what each was measured on):
  e2e_speedup_vs_python            diagnose with saliency heatmaps, whole process, images/s ratio
  e2e_noheatmap_speedup_vs_python  diagnose without heatmaps
  train_speedup_vs_python          one epoch of the pneumonia-cxr recipe, training images/s ratio
  forward_gemm_efficiency          forward GFLOP/s (batch 64) / measured sgemm GFLOP/s, same threads
  forward_gemm_efficiency_batch8   the same at batch 8
  cold_start_s                     one image, whole process, median
  peak_rss_mb_10k                  10,000 phantoms with heatmaps (default model)
  peak_rss_mb_large                1,000 3000x3000 16-bit radiographs with heatmaps (bench/large_rss.sh)

Before anything is timed, the reference's probabilities are checked against medattn's on the
same images (|difference| <= 1e-5, else the bench stops) and the raw heatmaps compared.
Timings are interleaved (medattn, Python, Python, medattn, ...), each repetition runs both on
the same images with the same threads; a ratio is the median over repetitions of the
per-repetition ratios.

Usage: /usr/bin/python3 bench/bench.py [BUILD_DIR]
Environment: BENCH_QUICK=1 (a few minutes: fewer images and repetitions), BENCH_THREADS (2),
BENCH_IMAGES (diagnose images, 1000; quick 200), BENCH_REPS (3; quick 2), BENCH_TRAIN_REPS
(training epochs of each side, 7; quick 2), BENCH_TRAIN_IMAGES (1024; quick 256), BENCH_10K
(10000; quick 1000), BENCH_LARGE_COUNT (1000; quick 16),
BENCH_SKIP=name,... (skip figures: e2e, train, forward, cold, rss10k, large), BENCH_DIR
(work folder, BUILD_DIR/bench-work).
"""
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
N_IMAGES = int(os.environ.get("BENCH_IMAGES", "200" if QUICK else "1000"))
REPS = int(os.environ.get("BENCH_REPS", "2" if QUICK else "3"))
N_TRAIN = int(os.environ.get("BENCH_TRAIN_IMAGES", "256" if QUICK else "1024"))
# One epoch of either side varies by up to 40% from run to run on a shared 2-core machine
# (docs/performance.md, session 8): more repetitions than the other figures.
TRAIN_REPS = int(os.environ.get("BENCH_TRAIN_REPS", "2" if QUICK else "7"))
N_10K = int(os.environ.get("BENCH_10K", "1000" if QUICK else "10000"))
N_LARGE = int(os.environ.get("BENCH_LARGE_COUNT", "16" if QUICK else "1000"))
SKIP = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))
WORK = os.path.abspath(os.environ.get("BENCH_DIR", os.path.join(BUILD, "bench-work")))
DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data", "chest_xray_224", "train"))
MODEL = os.path.join(ROOT, "models", "pneumonia-cxr")
MEDATTN = os.path.join(BUILD, "medattn")
PY = "/usr/bin/python3"
REF = os.path.join(ROOT, "bench", "reference.py")
ENV = dict(os.environ, OMP_NUM_THREADS=str(THREADS))


def say(key, value, note=""):
    print(f"{key} {value}", flush=True)
    if note:
        print(f"# {note}", flush=True)


def run_rss(cmd):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS MB, stderr)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb %M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=ENV, text=True)
    wall = time.perf_counter() - t
    m = re.findall(r"maxrss_kb (\d+)", p.stderr)
    if p.returncode not in (0, 1) or not m:
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, int(m[-1]) / 1024.0, p.stderr


def images(n):
    """n training images, both classes, spread evenly over the sorted file lists."""
    classes = sorted(os.listdir(DATA))
    files = {c: sorted(os.listdir(os.path.join(DATA, c))) for c in classes}
    out = []
    per = n // len(classes)
    for c in classes:
        step = max(1, len(files[c]) // max(1, per))
        out += [os.path.join(DATA, c, f) for f in files[c][::step][:per]]
    return out


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


CPU = {}  # (who, heatmaps) -> CPU seconds of each timed run, for the notes


def medattn_diagnose(list_file, heat=None, extra=()):
    cmd = [MEDATTN, "diagnose", "-m", MODEL, "--threads", str(THREADS), "--format", "jsonl", "--quiet", "-"]
    cmd += ["--heatmaps", heat] if heat else []
    cmd += list(extra)
    with open(list_file) as f:
        t = time.perf_counter()
        p = subprocess.run(cmd, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True)
        wall = time.perf_counter() - t
    if p.returncode not in (0, 1):
        sys.exit(f"bench: medattn diagnose failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, p.stdout


def python_diagnose(list_file, heat=None):
    cmd = [PY, REF, "diagnose", "-m", MODEL, "--threads", str(THREADS), list_file]
    cmd += ["--heatmaps", heat] if heat else []
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"bench: reference diagnose failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, p.stdout


def records(jsonl):
    out = {}
    for line in jsonl.splitlines():
        r = json.loads(line)
        out[r["file"]] = r
    return out


def check_equal(list_file):
    """The reference computes what medattn computes: probabilities to 1e-5, maps to a few steps."""
    import cv2
    import numpy as np

    ha, hb = os.path.join(WORK, "check-medattn"), os.path.join(WORK, "check-python")
    subprocess.run(["rm", "-rf", ha, hb])
    _, a = medattn_diagnose(list_file, ha)
    _, b = python_diagnose(list_file, hb)
    ra, rb = records(a), records(b)
    worst, worst_map, n = 0.0, 0, 0
    for f, r in ra.items():
        if not r.get("probabilities") or f not in rb:
            continue
        for k, v in r["probabilities"].items():
            worst = max(worst, abs(v - rb[f]["probabilities"][k]))
        raw_a = r.get("heatmap_raw")
        raw_b = rb[f]["heatmap"].replace(".heatmap.png", ".heatmap-raw.png")
        if raw_a and os.path.exists(raw_b):
            ma = cv2.imread(raw_a, cv2.IMREAD_UNCHANGED).astype(np.int64)
            mb = cv2.imread(raw_b, cv2.IMREAD_UNCHANGED).astype(np.int64)
            worst_map = max(worst_map, int(np.abs(ma - mb).max()))
        n += 1
    if n == 0 or worst > 1e-5:
        sys.exit(f"bench: the reference differs from medattn: max |probability difference| {worst:.2e} over {n} images")
    say("check_max_probability_difference", f"{worst:.1e}", f"{n} images, records print 6 decimals; tolerance 1e-5")
    say("check_max_heatmap_raw_difference", worst_map, "16-bit steps of 65535, raw saliency maps, same images")


def e2e():
    paths = images(N_IMAGES)
    list_file = os.path.join(WORK, "images.txt")
    with open(list_file, "w") as f:
        f.write("\n".join(paths) + "\n")
    check_small = os.path.join(WORK, "check.txt")
    with open(check_small, "w") as f:
        f.write("\n".join(paths[:: max(1, len(paths) // 64)]) + "\n")
    check_equal(check_small)
    for heat, key in ((False, "e2e_noheatmap_speedup_vs_python"), (True, "e2e_speedup_vs_python")):
        ratios, rate_m, rate_p = [], [], []
        for rep in range(REPS + 1):  # the first repetition warms the page cache and is not counted
            hd = os.path.join(WORK, "heat") if heat else None
            order = ("m", "p") if rep % 2 == 0 else ("p", "m")
            t = {}
            cpu = {}
            for who in order:
                subprocess.run(["rm", "-rf", os.path.join(WORK, "heat")])
                c0 = child_cpu()
                t[who] = (medattn_diagnose if who == "m" else python_diagnose)(list_file, hd)[0]
                cpu[who] = child_cpu() - c0
            if rep == 0:
                continue
            for who in cpu:
                CPU.setdefault((who, heat), []).append(cpu[who] / len(paths) * 1000)
            ratios.append(t["p"] / t["m"])
            rate_m.append(len(paths) / t["m"])
            rate_p.append(len(paths) / t["p"])
        say(key, f"{statistics.median(ratios):.2f}",
            f"{len(paths)} chest_xray_224/train JPEGs, pneumonia-cxr, {THREADS} threads, whole process, {REPS} interleaved reps:"
            f" medattn {statistics.median(rate_m):.0f} images/s, Python {statistics.median(rate_p):.0f} images/s,"
            f" ratios {' '.join(f'{r:.2f}' for r in ratios)}; CPU ms/image medattn"
            f" {statistics.median(CPU[('m', heat)]):.2f}, Python {statistics.median(CPU[('p', heat)]):.2f}")
    subprocess.run(["rm", "-rf", os.path.join(WORK, "heat")])


def train():
    paths = images(N_TRAIN)
    csv = os.path.join(WORK, "train.csv")
    with open(csv, "w") as f:
        f.write("path,label\n")
        for p in paths:
            f.write(f"{p},{os.path.basename(os.path.dirname(p))}\n")
    ratios, rm, rp = [], [], []
    for rep in range(TRAIN_REPS):
        out = os.path.join(WORK, "train-model")
        subprocess.run(["rm", "-rf", out])
        cmd_m = [MEDATTN, "train", csv, "--out", out, "--classes", "NORMAL,PNEUMONIA", "--val-fraction", "0.1",
                 "--image-size", "64", "--stem", "16,32,64", "--dim", "96", "--depth", "4", "--heads", "4",
                 "--epochs", "1", "--batch-size", "64", "--lr", "1e-3", "--label-smoothing", "0.05", "--ema", "0.999",
                 "--seed", "1", "--threads", str(THREADS)]
        cmd_p = [PY, REF, "train", csv, "--threads", str(THREADS), "--epochs", "1", "--batch-size", "64"]
        got = {}
        for who in (("m", "p") if rep % 2 == 0 else ("p", "m")):
            p = subprocess.run(cmd_m if who == "m" else cmd_p, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV, text=True)
            if p.returncode != 0:
                sys.exit(f"bench: training failed ({p.returncode}):\n{p.stdout[-2000:]}")
            pat = r"([0-9.]+) img/s" if who == "m" else r"train_images_per_s ([0-9.]+)"
            m = re.findall(pat, p.stdout)
            if not m:
                sys.exit(f"bench: no training rate in:\n{p.stdout[-2000:]}")
            got[who] = float(m[-1])
        ratios.append(got["m"] / got["p"])
        rm.append(got["m"])
        rp.append(got["p"])
    n_train = int(len(paths) * 0.9)
    say("train_speedup_vs_python", f"{statistics.median(ratios):.2f}",
        f"one epoch of the pneumonia-cxr recipe (batch 64, AdamW, label smoothing, EMA, augmentation) on ~{n_train} of"
        f" {len(paths)} chest_xray_224/train images, {THREADS} threads, training loop only, {TRAIN_REPS} interleaved reps:"
        f" medattn {statistics.median(rm):.0f} images/s, Python {statistics.median(rp):.0f} images/s;"
        f" ratios {' '.join(f'{r:.2f}' for r in ratios)}")


def forward():
    p = subprocess.run([os.path.join(BUILD, "medattn_bench"), "--figures", MODEL, str(THREADS)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=ENV, text=True)
    if p.returncode != 0:
        sys.exit(f"bench: medattn_bench failed:\n{p.stderr[-2000:]}")
    fig = dict(l.split(None, 1) for l in p.stdout.splitlines() if l and not l.startswith("#"))
    q = subprocess.run([PY, REF, "forward", "-m", MODEL, "--threads", str(THREADS), "--batch-size", "64"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True)
    py_rate = re.findall(r"forward_images_per_s ([0-9.]+)", q.stdout)
    say("forward_gemm_efficiency", fig["forward_gemm_efficiency"].strip(),
        f"batch 64, {THREADS} threads, pneumonia-cxr: {fig['forward_gflop_per_image'].strip()} GFLOP/image,"
        f" medattn {fig['forward_images_per_s'].strip()} images/s = {fig['forward_gflops'].strip()} GFLOP/s,"
        f" sgemm {fig['sgemm_gflops'].strip()} GFLOP/s; Python forward {py_rate[-1] if py_rate else '?'} images/s")
    say("forward_gemm_efficiency_batch8", fig["forward_gemm_efficiency_batch8"].strip(),
        f"the same at batch 8: medattn {fig['forward_images_per_s_batch8'].strip()} images/s")


def cold():
    one = images(2)[0]
    times = []
    for _ in range(7):
        t, _ = medattn_diagnose_one(one)
        times.append(t)
    say("cold_start_s", f"{statistics.median(times):.3f}",
        f"medattn diagnose -m models/pneumonia-cxr ONE.jpeg --format jsonl, whole process, median of 7"
        f" (min {min(times):.3f}, max {max(times):.3f})")


def medattn_diagnose_one(path):
    t = time.perf_counter()
    p = subprocess.run([MEDATTN, "diagnose", "-m", MODEL, "--threads", str(THREADS), "--format", "jsonl", "--quiet", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True)
    return time.perf_counter() - t, p.stdout


def rss10k():
    ph = os.path.join(WORK, f"ph{N_10K}")
    if not os.path.isdir(os.path.join(ph, "images")):
        subprocess.run([MEDATTN, "phantom", "--out", ph, "--count", str(N_10K), "--seed", "5"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    heat = os.path.join(WORK, "heat10k")
    subprocess.run(["rm", "-rf", heat])
    wall, mb, _ = run_rss([MEDATTN, "diagnose", os.path.join(ph, "images"), "--heatmaps", heat, "--threads", str(THREADS),
                           "-o", os.path.join(WORK, "out10k.jsonl"), "--quiet"])
    subprocess.run(["rm", "-rf", heat])
    say("peak_rss_mb_10k", f"{mb:.0f}", f"{N_10K} phantoms (medattn phantom --seed 5), default model, saliency heatmaps,"
        f" {THREADS} threads, /usr/bin/time maxrss; {N_10K / wall:.0f} images/s")


def large():
    env = dict(ENV, BENCH_LARGE_COUNT=str(N_LARGE), BENCH_DIR=os.path.join(WORK, "large"))
    p = subprocess.run(["bash", os.path.join(ROOT, "bench", "large_rss.sh"), BUILD], stdout=subprocess.PIPE, env=env, text=True)
    sys.stdout.write(p.stdout)
    sys.stdout.flush()


def main():
    os.makedirs(WORK, exist_ok=True)
    print(f"# medattn bench: {THREADS} threads, {'quick' if QUICK else 'full'}; {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    for name, fn in (("e2e", e2e), ("train", train), ("forward", forward), ("cold", cold), ("rss10k", rss10k),
                     ("large", large)):
        if name not in SKIP:
            fn()


if __name__ == "__main__":
    main()
