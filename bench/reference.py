#!/usr/bin/python3
"""The Python pipeline a user would write instead of medattn, for `make bench`.

PyTorch + OpenCV + NumPy from Debian (python3-torch, python3-opencv, python3-numpy). It loads
the same model directory (model.json + weights.bin, the format of src/model/net.h), rebuilds
the same CNN+Transformer in torch.nn and preprocesses as the card says (8-bit window 0..255,
BT.601 grey, aspect-preserving letterbox with INTER_AREA, (x - mean) / std), so that its
probabilities equal medattn's; bench/bench.py checks that before anything is timed.

Commands (one line of JSON per image on stdout for `diagnose`; timings on stderr):
  reference.py diagnose -m MODEL [--heatmaps DIR] [--threads N] [--batch-size N] LIST_OR_DIR
  reference.py forward  -m MODEL [--threads N] [--batch-size N] [--reps N]
  reference.py train    DATA_CSV --threads N --epochs 1 --batch-size 64 [--no-augment]

Differences that favour Python (it does less): no OOD gate, no scope checks, no record
fields beyond file/diagnosis/probabilities/heatmap, a simpler overlay caption and legend.
"""
import argparse
import json
import math
import os
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- model directory
def read_weights(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"MDATTNW1":
        raise SystemExit(f"error: cannot load weights '{path}': bad magic")
    version, count = struct.unpack_from("<II", data, 8)
    pos = 16
    state = {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        name = data[pos:pos + n].decode()
        pos += n
        (ndim,) = struct.unpack_from("<I", data, pos)
        pos += 4
        shape = struct.unpack_from("<" + "q" * ndim, data, pos)
        pos += 8 * ndim
        numel = int(np.prod(shape)) if ndim else 1
        arr = np.frombuffer(data, dtype="<f4", count=numel, offset=pos).reshape(shape)
        pos += 4 * numel
        state[name] = torch.from_numpy(arr.copy())
    return state


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, int(dim * mlp_ratio))
        self.fc2 = nn.Linear(int(dim * mlp_ratio), dim)

    def forward(self, x):
        h = x + self.attn(self.norm1(x))
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class AttnNet(nn.Module):
    def __init__(self, arch, size, classes, channels):
        super().__init__()
        layers, cin = [], channels
        for cout in arch["stem_channels"]:
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.GELU(),
                       nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]
            cin = cout
        self.stem = nn.Sequential(*layers)
        dim = arch["dim"]
        grid = size
        for _ in arch["stem_channels"]:
            grid = (grid + 1) // 2
        self.proj = nn.Conv2d(cin, dim, 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, arch["heads"], arch["mlp_ratio"]) for _ in range(arch["depth"])])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.proj(self.stem(x)).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), t], 1) + self.pos_embed
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h)[:, 0])


def load_model(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        card = json.load(f)
    net = AttnNet(card["architecture"], card["input"]["size"], len(card["classes"]), card["input"].get("channels", 1))
    state = read_weights(os.path.join(model_dir, card["weights"]["file"]))
    missing = net.load_state_dict(state, strict=False)
    if [k for k in missing.missing_keys if "num_batches_tracked" not in k] or missing.unexpected_keys:
        raise SystemExit(f"error: cannot load model '{model_dir}': {missing}")
    net.eval()
    return card, net


# ---------------------------------------------------------------- preprocessing
def read_display(path):
    """The windowed image in [0,1] (float32), as medattn's reader and to_display make it."""
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"cannot read '{path}'")
    if raw.ndim == 3 and raw.shape[2] == 4:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2BGR)
    v = raw.astype(np.float64)
    if raw.dtype == np.uint8:
        lo, hi = 0.0, 255.0
    else:
        lo, hi = float(v.min()), float(v.max())
    c = lo + (hi - lo) / 2.0  # the DICOM linear function of medattn's window_from_range
    w = hi - lo
    d = np.clip((v - c) / w + 0.5, 0.0, 1.0) if w > 0 else (v > c).astype(np.float64)
    return d.astype(np.float32)


def prepare(display, pre):
    size = pre["size"]
    grey = display if display.ndim == 2 else cv2.cvtColor(display, cv2.COLOR_BGR2GRAY)
    h0, w0 = grey.shape
    scale = size / max(w0, h0)
    w = min(max(int(round(w0 * scale)), 1), size)
    h = min(max(int(round(h0 * scale)), 1), size)
    x0, y0 = (size - w) // 2, (size - h) // 2
    canvas = np.zeros((size, size), np.float32)
    canvas[y0:y0 + h, x0:x0 + w] = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA if w < w0 else cv2.INTER_LINEAR)
    std, mean = np.float32(1.0 / pre["std"]), np.float32(-pre["mean"] / pre["std"])
    return canvas * std + mean, (x0, y0, w, h)


def load_one(path, card, keep_display):
    try:
        display = read_display(path)
        x, box = prepare(display, {"size": card["input"]["size"], **card["preprocess"]})
        return path, x, box, (np.round(display * 255.0).astype(np.uint8) if keep_display else None), None
    except Exception as e:  # the batch carries on
        return path, None, None, None, str(e)


def list_images(args):
    out = []
    for a in args:
        if os.path.isdir(a):
            for root, _, files in os.walk(a):
                out += [os.path.join(root, f) for f in files if f.lower().endswith((".png", ".jpg", ".jpeg"))]
        elif a.endswith(".txt"):
            with open(a) as f:
                out += [l.strip() for l in f if l.strip()]
        else:
            out.append(a)
    return sorted(out)


# ---------------------------------------------------------------- saliency and overlay
def gaussian_blur(x, sigma):
    r = int(math.ceil(3 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32) ** 2) / (2 * sigma * sigma))
    k = k / k.sum()
    p = F.pad(x, (r, r, r, r), mode="replicate")
    return F.conv2d(F.conv2d(p, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))


def saliency(net, x):
    x = x.clone().requires_grad_(True)
    logits = net(x)
    target = logits.argmax(1)
    (g,) = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), x)
    m = gaussian_blur(g.abs().sum(1, keepdim=True), max(1.0, x.shape[2] / 24.0)).squeeze(1)
    flat = m.reshape(m.shape[0], -1)
    lo, hi = flat.min(1, keepdim=True)[0], flat.max(1, keepdim=True)[0]
    rng = hi - lo
    flat = torch.where(rng > 1e-12, (flat - lo) / rng.clamp_min(1e-12), torch.zeros_like(flat))
    return logits.detach(), flat.reshape(m.shape)


def write_heatmaps(stem, display_u8, square_map, box, caption):
    x0, y0, w, h = box
    H, W = display_u8.shape[:2]
    heat = cv2.resize(np.ascontiguousarray(square_map[y0:y0 + h, x0:x0 + w]), (W, H), interpolation=cv2.INTER_LINEAR)
    heat = np.clip(heat, 0.0, 1.0)
    base = display_u8 if display_u8.ndim == 3 else cv2.cvtColor(display_u8, cv2.COLOR_GRAY2BGR)
    k = max(1.0, 256.0 / min(H, W))
    size = (int(W * k + 0.5), int(H * k + 0.5))
    colour = cv2.applyColorMap((heat * 255.0 + 0.5).astype(np.uint8), cv2.COLORMAP_TURBO)
    a = (0.5 * heat)[..., None]
    picture = (base.astype(np.float32) * (1 - a) + colour.astype(np.float32) * a + 0.5).astype(np.uint8)
    picture = cv2.resize(picture, size, interpolation=cv2.INTER_LINEAR)
    bar_w, strip_h = 60, 30
    canvas = np.full((size[1] + strip_h, size[0] + bar_w, 3), 32, np.uint8)
    canvas[strip_h:, :size[0]] = picture
    bar = cv2.applyColorMap(np.linspace(255, 0, size[1] - 20).astype(np.uint8).reshape(-1, 1), cv2.COLORMAP_TURBO)
    canvas[strip_h + 10:strip_h + size[1] - 10, size[0] + 8:size[0] + 20] = bar
    cv2.putText(canvas, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.imwrite(stem + ".heatmap.png", canvas)
    cv2.imwrite(stem + ".heatmap-raw.png", (heat * 65535.0 + 0.5).astype(np.uint16))


# ---------------------------------------------------------------- commands
def diagnose(a):
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    card, net = load_model(a.model)
    classes, temperature = card["classes"], card.get("calibration", {}).get("temperature", 1.0)
    paths = list_images(a.inputs)
    if a.heatmaps:
        os.makedirs(a.heatmaps, exist_ok=True)
    out = sys.stdout
    t0 = time.time()
    with ThreadPoolExecutor(a.workers) as pool:
        items = pool.map(lambda p: load_one(p, card, bool(a.heatmaps)), paths)
        batch = []

        def flush():
            good = [b for b in batch if b[4] is None]
            if good:
                x = torch.from_numpy(np.stack([b[1] for b in good])).unsqueeze(1)
                if a.heatmaps:
                    logits, maps = saliency(net, x)
                else:
                    with torch.no_grad():
                        logits = net(x)
                probs = torch.softmax(logits.double() / temperature, 1)
            gi = 0
            for path, x1, box, disp, err in batch:
                if err is not None:
                    out.write(json.dumps({"file": path, "diagnosis": None, "error": err}) + "\n")
                    continue
                p = probs[gi].tolist()
                best = int(np.argmax(p))
                rec = {"file": path, "diagnosis": classes[best], "probability": p[best],
                       "probabilities": dict(zip(classes, p)), "heatmap": None, "error": None}
                if a.heatmaps:
                    stem = os.path.join(a.heatmaps, path.strip("/").replace("/", "_"))
                    write_heatmaps(stem, disp, maps[gi].numpy(), box, f"{classes[best]} {p[best]:.3f} [saliency]")
                    rec["heatmap"] = stem + ".heatmap.png"
                out.write(json.dumps(rec) + "\n")
                gi += 1
            batch.clear()

        for item in items:
            batch.append(item)
            if len(batch) == a.batch_size:
                flush()
        flush()
    out.flush()
    dt = time.time() - t0
    print(f"reference: {len(paths)} images in {dt:.3f} s ({len(paths) / max(dt, 1e-9):.1f} images/s)", file=sys.stderr)


def forward(a):
    torch.set_num_threads(a.threads)
    card, net = load_model(a.model)
    S = card["input"]["size"]
    x = torch.randn(a.batch_size, card["input"].get("channels", 1), S, S)
    with torch.no_grad():
        net(x)
        best = 0.0
        for _ in range(a.reps):
            t = time.time()
            n = 0
            while time.time() - t < 1.0:
                net(x)
                n += a.batch_size
            best = max(best, n / (time.time() - t))
    print(f"forward_images_per_s {best:.1f}")


# The recipe of `medattn train` for models/pneumonia-cxr (its card), as a plain loop.
def augment(img, rng):
    S = img.shape[0]
    angle = rng.uniform(-7, 7)
    scale = rng.uniform(0.9, 1.1)
    M = cv2.getRotationMatrix2D((S / 2, S / 2), angle, scale)
    M[:, 2] += rng.uniform(-0.06, 0.06, 2) * S
    img = cv2.warpAffine(img, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    img = (img - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08)
    img = np.clip(img, 0, 1) ** rng.uniform(0.78, 1.28)
    if rng.random() < 0.25:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < 0.25:
        f = rng.uniform(0.5, 1.0)
        small = cv2.resize(img, (max(1, int(S * f)), max(1, int(S * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (S, S), interpolation=cv2.INTER_LINEAR)
    img = img + rng.normal(0, rng.uniform(0, 0.03), img.shape).astype(np.float32)
    return img.astype(np.float32)


def train(a):
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    rows = [l.strip().split(",") for l in open(a.data)][1:]
    folder = os.path.dirname(os.path.abspath(a.data))
    classes = sorted(set(r[1] for r in rows))
    size = a.image_size
    pre = {"size": size, "mean": 0.5, "std": 0.25}
    t_load = time.time()
    xs, ys = [], []
    for p, lab in rows:
        d = read_display(p if os.path.isabs(p) else os.path.join(folder, p))
        grey = d if d.ndim == 2 else cv2.cvtColor(d, cv2.COLOR_BGR2GRAY)
        xs.append(cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA))
        ys.append(classes.index(lab))
    ys = np.array(ys)
    counts = np.bincount(ys, minlength=len(classes))
    weights = torch.tensor(len(ys) / (len(classes) * np.maximum(counts, 1)), dtype=torch.float32)
    arch = {"stem_channels": [16, 32, 64], "dim": 96, "depth": 4, "heads": 4, "mlp_ratio": 2.0}
    net = AttnNet(arch, size, len(classes), 1)
    ema = AttnNet(arch, size, len(classes), 1)
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    print(f"reference: loaded {len(ys)} images in {time.time() - t_load:.2f} s", file=sys.stderr)
    t0 = time.time()
    seen = 0
    for epoch in range(a.epochs):
        net.train()
        order = rng.permutation(len(ys))
        for s in range(0, len(order), a.batch_size):
            idx = order[s:s + a.batch_size]
            imgs = [augment(xs[i], rng) if a.augment else xs[i] for i in idx]
            x = (torch.from_numpy(np.stack(imgs)).unsqueeze(1) - pre["mean"]) / pre["std"]
            y = torch.from_numpy(ys[idx])
            loss = loss_fn(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for pe, pn in zip(ema.parameters(), net.parameters()):
                    pe.mul_(0.999).add_(pn, alpha=0.001)
            seen += len(idx)
    dt = time.time() - t0
    print(f"train_images_per_s {seen / dt:.1f}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("diagnose")
    d.add_argument("-m", "--model", required=True)
    d.add_argument("--heatmaps")
    d.add_argument("--threads", type=int, default=2)
    d.add_argument("--workers", type=int, default=2)
    d.add_argument("--batch-size", type=int, default=8)
    d.add_argument("inputs", nargs="+")
    f = sub.add_parser("forward")
    f.add_argument("-m", "--model", required=True)
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--batch-size", type=int, default=64)
    f.add_argument("--reps", type=int, default=3)
    t = sub.add_parser("train")
    t.add_argument("data")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--image-size", type=int, default=64)
    t.add_argument("--no-augment", dest="augment", action="store_false")
    a = ap.parse_args()
    {"diagnose": diagnose, "forward": forward, "train": train}[a.cmd](a)


if __name__ == "__main__":
    main()
