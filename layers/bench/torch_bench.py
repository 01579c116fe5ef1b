#!/usr/bin/python3
"""PyTorch twin of `vktrain bench`: times the same shapes (each conv and linear
forward and backward pass, pools, dropout, the loss, SGD, the whole training
step and inference) of the reference experiment's AlexNet and writes the same
JSON schema (testdata/schema.json), so that

    /usr/bin/python3 layers/bench/torch_bench.py --json torch.json
    vktrain bench --compare torch.json

prints vktrain's speedup over PyTorch per kernel, per layer and for the step.
Kernel names match vktrain's ("features.3 backward-data", ...). On the CPU it
runs with torch.set_num_threads(THREADS) (2 by default) and wall-clock timing;
with CUDA available (and --device auto or cuda) on the GPU with CUDA events.
It prints which BLAS torch was built with and which library it loaded.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SCHEMA = "vktrain-bench/1"


def alexnet(classes=10):
    """torchvision's AlexNet after the reference surgery (classifier.4 =
    Linear(4096, 1024), classifier.6 = Linear(1024, classes)), same module paths."""
    m = nn.Module()
    m.features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
    m.avgpool = nn.AdaptiveAvgPool2d((6, 6))
    m.classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(9216, 4096), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(4096, 1024), nn.ReLU(inplace=True), nn.Linear(1024, classes))

    def forward(x):
        return m.classifier(torch.flatten(m.avgpool(m.features(x)), 1))
    m.forward = forward
    return m


class Timer:
    def __init__(self, dev, budget, count):
        self.dev, self.budget, self.count = dev, budget, count

    def sync(self):
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def once(self, fn):
        if self.dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            return a.elapsed_time(b)
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    def repeat(self, fn):
        """Warm-up, then count runs or runs until the budget (at least 3): ms each."""
        self.once(fn)
        out, start = [], time.perf_counter()
        while True:
            if self.count > 0:
                if len(out) >= self.count:
                    break
            elif len(out) >= 2000 or (len(out) >= 3 and time.perf_counter() - start >= self.budget):
                break
            out.append(self.once(fn))
        return out


def blas_loaded():
    """The BLAS and LAPACK shared libraries mapped into this process."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                base = os.path.basename(p)
                if any(k in base for k in ("blas", "mkl", "lapack", "dnnl", "gomp", "omp")) and ".so" in base:
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    return sorted(libs)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def revision():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                              check=True).stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def shape(t):
    return "x".join(str(d) for d in t.shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of repeats per kernel after the warm-up")
    ap.add_argument("--count", type=int, default=0, help="exact timed runs per kernel (overrides --budget)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    ap.add_argument("--json", default="", help="write the report here")
    ap.add_argument("--kernels", default="", help="comma-separated name substrings to time")
    args = ap.parse_args()

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
    print(torch.__config__.show())
    print("BLAS libraries loaded:", ", ".join(blas_loaded()) or "none found")
    torch.manual_seed(1)
    timer = Timer(dev, args.budget, args.count)
    N, S = args.batch, args.image_size
    resize = (S * 8 + 6) // 7

    # Peaks: a large SGEMM and a 64 MiB copy.
    n = 2048
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    gemm = timer.repeat(lambda: torch.mm(a, b))
    src = torch.randn(16 << 20, device=dev)
    dst = torch.empty_like(src)
    copy = timer.repeat(lambda: dst.copy_(src))
    peaks = {"fma_gflops": 2 * n ** 3 / min(gemm) / 1e6, "copy_gbs": 2 * src.numel() * 4 / min(copy) / 1e6,
             "fma_kernel": "torch.mm %d^3 (BLAS)" % n, "copy_kernel": "Tensor.copy_ of 64 MiB"}
    print("peaks: %.1f GFLOP/s (sgemm), %.1f GB/s (copy)" % (peaks["fma_gflops"], peaks["copy_gbs"]))
    blas = ", ".join(os.path.basename(p) for p in blas_loaded())

    model = alexnet().to(dev)
    records = [(torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8, device=dev),
                torch.randint(0, 10, (N,), device=dev)) for _ in range(2)]
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)
    off = (resize - S) // 2

    def preprocess(u8):
        x = F.interpolate(u8.float() / 255, size=(resize, resize), mode="bilinear", align_corners=False)
        return (x[:, :, off:off + S, off:off + S] - mean) / std

    kernels = []
    filt = [f.strip() for f in args.kernels.split(",") if f.strip()]

    def bench(name, typ, pas, shp, fn, flops=0.0, nbytes=0.0):
        layer = name.rsplit(" ", 1)[0]
        if filt and not any(f in name for f in filt):
            return
        ts = timer.repeat(fn)
        med = statistics.median(ts)
        k = {"name": name, "layer": layer, "type": typ, "pass": pas, "variant": "", "chosen": True, "shape": shp,
             "in_step": pas != "relu-forward", "runs": len(ts), "median_ms": med, "min_ms": min(ts), "max_ms": max(ts),
             "flops": flops, "bytes": nbytes}
        if flops:
            k["gflops"] = flops / med / 1e6
            k["pct_peak"] = 100 * k["gflops"] / peaks["fma_gflops"]
        else:
            k["gbs"] = nbytes / med / 1e6
            k["pct_peak"] = 100 * k["gbs"] / peaks["copy_gbs"]
        kernels.append(k)
        print("%-34s %10.3f ms" % (name, med), file=sys.stderr)

    aten = torch.ops.aten
    with torch.no_grad():
        u8 = records[0][0]
        x = preprocess(u8)
        bench("input forward", "Preprocess", "forward", "%s u8 -> %s" % (shape(u8), shape(x)),
              lambda: preprocess(u8), nbytes=u8.numel() + 4 * x.numel())
        fwd = []  # (path, module, input, output)
        for i, mod in enumerate(model.features):
            path = "features.%d" % i
            if isinstance(mod, nn.ReLU):
                continue
            y = mod(x)
            if isinstance(mod, nn.Conv2d):
                y = F.relu(y)
            fwd.append((path, mod, x, y))
            x = y
        y = model.avgpool(x)
        fwd.append(("avgpool", model.avgpool, x, y))
        x = torch.flatten(y, 1)
        for i, mod in enumerate(model.classifier):
            path = "classifier.%d" % i
            if isinstance(mod, nn.ReLU):
                continue
            if isinstance(mod, nn.Dropout):
                y, mask = aten.native_dropout(x, 0.5, True)
                fwd.append((path, mod, x, (y, mask)))
            else:
                y = mod(x)
                relu = i + 1 < len(model.classifier) and isinstance(model.classifier[i + 1], nn.ReLU)
                if relu:
                    y = F.relu(y)
                fwd.append((path, mod, x, y))
            x = y if not isinstance(y, tuple) else y[0]
        logits = x

        def conv_flops(mod, y):
            c, k = mod.in_channels, mod.out_channels
            r, s = mod.kernel_size
            return 2.0 * k * c * r * s * y.numel() / k

        relus = {"features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1", "classifier.4"}
        for path, mod, xin, y in fwd:
            shp = "%s -> %s" % (shape(xin), shape(y if not isinstance(y, tuple) else y[0]))
            if isinstance(mod, nn.Conv2d):
                bench(path + " forward", "Conv2d", "forward", shp, lambda m=mod, xi=xin: F.relu(m(xi)), flops=conv_flops(mod, y))
                bench(path + " relu-forward", "ReLU", "relu-forward", shape(y), lambda yy=y: F.relu(yy), nbytes=8 * y.numel())
            elif isinstance(mod, nn.Linear):
                fl = 2.0 * xin.shape[0] * mod.in_features * mod.out_features
                if path in relus:
                    bench(path + " forward", "Linear", "forward", shp, lambda m=mod, xi=xin: F.relu(m(xi)), flops=fl)
                    bench(path + " relu-forward", "ReLU", "relu-forward", shape(y), lambda yy=y: F.relu(yy), nbytes=8 * y.numel())
                else:
                    bench(path + " forward", "Linear", "forward", shp, lambda m=mod, xi=xin: m(xi), flops=fl)
            elif isinstance(mod, nn.MaxPool2d):
                bench(path + " forward", "MaxPool2d", "forward", shp,
                      lambda xi=xin: F.max_pool2d(xi, 3, 2, return_indices=True), nbytes=4 * xin.numel() + 8 * y.numel())
            elif isinstance(mod, nn.AdaptiveAvgPool2d):
                bench(path + " forward", "AdaptiveAvgPool2d", "forward", shp,
                      lambda xi=xin: F.adaptive_avg_pool2d(xi, (6, 6)), nbytes=4 * (xin.numel() + y.numel()))
            elif isinstance(mod, nn.Dropout):
                bench(path + " forward", "Dropout", "forward", shp,
                      lambda xi=xin: aten.native_dropout(xi, 0.5, True), nbytes=8 * xin.numel())

        labels = records[0][1]

        def xent():
            with torch.enable_grad():
                z = logits.detach().requires_grad_()
                loss = F.cross_entropy(z, labels)
                return torch.autograd.grad(loss, z)
        bench("loss forward+backward", "SoftmaxCrossEntropy", "forward+backward", shape(logits), xent,
              nbytes=4 * (2 * logits.numel() + N))

        for path, mod, xin, y in reversed(fwd):
            if isinstance(y, tuple):
                y, mask = y
            dy = torch.randn_like(y)
            shp = "%s -> %s" % (shape(xin), shape(y))
            if isinstance(mod, nn.Conv2d):
                fl = conv_flops(mod, y)
                args_ = (list(mod.stride), list(mod.padding), [1, 1], False, [0, 0], 1)
                bench(path + " backward-bias", "Conv2d", "backward-bias", shp,
                      lambda d=dy, yy=y: aten.threshold_backward(d, yy, 0).sum((0, 2, 3)), nbytes=12 * y.numel())
                bench(path + " backward-weights", "Conv2d", "backward-weights", shp,
                      lambda d=dy, xi=xin, m=mod: aten.convolution_backward(d, xi, m.weight, None, *args_, [False, True, False]),
                      flops=fl)
                if path != "features.0":
                    bench(path + " backward-data", "Conv2d", "backward-data", shp,
                          lambda d=dy, xi=xin, m=mod: aten.convolution_backward(d, xi, m.weight, None, *args_, [True, False, False]),
                          flops=fl)
            elif isinstance(mod, nn.Linear):
                fl = 2.0 * N * mod.in_features * mod.out_features
                if path in relus:
                    bench(path + " backward-relu", "Linear", "backward-relu", shp,
                          lambda d=dy, yy=y: aten.threshold_backward(d, yy, 0), nbytes=12 * y.numel())
                bench(path + " backward-weights", "Linear", "backward-weights", shp,
                      lambda d=dy, xi=xin: (d.t().mm(xi), d.sum(0)), flops=fl + 2.0 * N * mod.out_features)
                bench(path + " backward-data", "Linear", "backward-data", shp,
                      lambda d=dy, m=mod: d.mm(m.weight), flops=fl)
            elif isinstance(mod, nn.MaxPool2d):
                _, idx = F.max_pool2d(xin, 3, 2, return_indices=True)
                bench(path + " backward", "MaxPool2d", "backward", shp,
                      lambda d=dy, xi=xin, ix=idx: aten.max_pool2d_with_indices_backward(d, xi, [3, 3], [2, 2], [0, 0], [1, 1], False, ix),
                      nbytes=8 * y.numel() + 4 * xin.numel())
            elif isinstance(mod, nn.AdaptiveAvgPool2d):
                bench(path + " backward", "AdaptiveAvgPool2d", "backward", shp,
                      lambda d=dy, xi=xin: aten._adaptive_avg_pool2d_backward(d, xi), nbytes=4 * (xin.numel() + y.numel()))
            elif isinstance(mod, nn.Dropout):
                bench(path + " backward", "Dropout", "backward", shp,
                      lambda d=dy, mk=mask: aten.native_dropout_backward(d, mk, 2.0), nbytes=4 * (xin.numel() + y.numel()))

    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    nparams = sum(p.numel() for p in model.parameters())
    bench("sgd update", "SGD", "update", "%d tensors, %d parameters" % (len(list(model.parameters())), nparams),
          opt.step, nbytes=20.0 * nparams)

    # The whole training step, from uint8 records to the SGD update.
    model.train()
    state = {"i": 0}

    def step():
        u, lab = records[state["i"] % 2]
        state["i"] += 1
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(preprocess(u)), lab)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
    print("training step", file=sys.stderr)
    st = timer.repeat(step)
    med = statistics.median(st)
    step_flops = sum(k["flops"] for k in kernels if k["in_step"])
    # Host in the loop: steps back to back over wall time.
    k = max(len(st), 4)
    t0 = time.perf_counter()
    for _ in range(k):
        step()
    timer.sync()
    wall = time.perf_counter() - t0

    model.eval()
    infer = {"batch": N}
    with torch.no_grad():
        for bs in sorted({1, N}):
            u, lab = records[0][0][:bs], records[0][1][:bs]

            def fwd_only(u=u, lab=lab):
                z = model(preprocess(u))
                F.cross_entropy(z, lab)
                z.argmax(1)
            ts = timer.repeat(fwd_only)
            m_ = statistics.median(ts)
            if bs == 1:
                infer["batch1_ms"], infer["batch1_images_per_s"] = m_, 1e3 / m_
            if bs == N:
                infer["batch_ms"], infer["batch_images_per_s"] = m_, N * 1e3 / m_

    name = cpu_name() if dev.type == "cpu" else torch.cuda.get_device_name(dev)
    rep = {
        "schema": SCHEMA, "tool": "pytorch", "version": "torch " + torch.__version__, "revision": revision(),
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": {"name": name, "type": "CPU" if dev.type == "cpu" else "CUDA",
                   "driver": ("BLAS: " + (blas or "unknown")) if dev.type == "cpu" else "CUDA " + str(torch.version.cuda),
                   "api_version": torch.__version__},
        "config": {"image_size": S, "batch": N, "budget_s": args.budget, "count": args.count, "variants": False,
                   "filter": args.kernels, "gemm_variant": "", "threads": torch.get_num_threads() if dev.type == "cpu" else 0},
        "peaks": peaks, "kernels": kernels, "skipped": [],
        "step": {"batch": N, "runs": len(st), "median_ms": med, "min_ms": min(st), "max_ms": max(st),
                 "images_per_s": N * 1e3 / med, "wall_images_per_s": k * N / wall, "flops": step_flops,
                 "gflops": step_flops / med / 1e6 if step_flops else 0.0, "layers": []},
        "inference": infer,
    }
    print("training step, batch %d: median %.2f ms (%.1f images/s); inference batch 1 %.2f ms, batch %d %.2f ms"
          % (N, med, N * 1e3 / med, infer["batch1_ms"], N, infer["batch_ms"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=2)
        print("wrote", args.json)


if __name__ == "__main__":
    main()
