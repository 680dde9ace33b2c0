#!/usr/bin/python3
"""Two medattn binaries (before, after) timed interleaved on the same images, with and without
saliency heatmaps, whole process; threads from $T (default 2).
Usage: T=1 /usr/bin/python3 bench/ab.py BEFORE_BINARY AFTER_BINARY LIST_OF_PATHS REPS"""
import subprocess, sys, time, os, statistics, resource
B, A = sys.argv[1], sys.argv[2]
lst = sys.argv[3]; reps = int(sys.argv[4]); n = sum(1 for _ in open(lst))
model = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "pneumonia-cxr")
def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN); return r.ru_utime + r.ru_stime
for heat in (False, True):
    res = {"before": [], "after": []}; cpus = {"before": [], "after": []}
    for rep in range(reps + 1):
        order = (("before", B), ("after", A)) if rep % 2 == 0 else (("after", A), ("before", B))
        for name, binary in order:
            subprocess.run(["rm", "-rf", os.path.join(os.environ.get("TMPDIR", "/tmp"), "medattn-ab-heat")])
            cmd = [binary, "diagnose", "-m", model, "--threads", os.environ.get("T", "2"), "--format", "jsonl", "--quiet", "-"] + (["--heatmaps", os.path.join(os.environ.get("TMPDIR", "/tmp"), "medattn-ab-heat")] if heat else [])
            c0 = cpu(); t = time.perf_counter()
            subprocess.run(cmd, stdin=open(lst), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dt = time.perf_counter() - t
            if rep: res[name].append(n / dt); cpus[name].append((cpu() - c0) / n * 1000)
    print(f"{'heatmaps' if heat else 'no heatmaps'}: before {statistics.median(res['before']):.1f} images/s ({statistics.median(cpus['before']):.2f} CPU ms/image), "
          f"after {statistics.median(res['after']):.1f} images/s ({statistics.median(cpus['after']):.2f} CPU ms/image); "
          f"per-rep after/before {' '.join(f'{a/b:.2f}' for a, b in zip(res['after'], res['before']))}", flush=True)
