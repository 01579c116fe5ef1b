#!/usr/bin/python3
"""Times a full training step of the reference's modified AlexNet on PyTorch's
CPU backend, the figure layers.BenchmarkTrainStep is set beside (make bench-step).

Run with Debian's python3-torch and python3-torchvision:
  /usr/bin/python3 torch_step_bench.py [--threads 2] [--warmup 2] [--steps 5]
                                       [--configs 224:4,224:64,64:64]

The model is torchvision's AlexNet with classifier[4] -> Linear(4096, 1024) and
classifier[6] -> Linear(1024, 10), in train mode (dropout 0.5 as torchvision
builds it). One step is zero_grad, forward, cross-entropy, backward and
SGD(lr 0.001, momentum 0.9) on a fixed batch already at the network's input size
(the reference's DataLoader resizes on the CPU beforehand: not timed here).

It prints the BLAS torch loaded (torch.__config__.show(), and which BLAS/LAPACK
libraries /proc/self/maps shows mapped), then per configuration the median step
time after warm-up and images/s, and one machine-readable line per
configuration:
  RESULT torch size=224 batch=4 median_ms=167.0 images_per_s=24.0
"""
import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision


def modified_alexnet():
    m = torchvision.models.alexnet(num_classes=1000)
    m.classifier[4] = torch.nn.Linear(4096, 1024)
    m.classifier[6] = torch.nn.Linear(1024, 10)
    return m


def loaded_blas():
    """The BLAS and LAPACK shared objects mapped into this process, by path."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6:
                continue
            path = parts[-1]
            name = os.path.basename(path)
            if any(k in name for k in ("blas", "lapack", "mkl", "blis", "atlas")):
                libs.add(os.path.realpath(path))
    return sorted(libs)


def blas_name(libs):
    joined = " ".join(libs)
    if "openblas" in joined:
        variant = "openmp" if "openblas-openmp" in joined else "pthread" if "openblas-pthread" in joined else "serial" if "openblas-serial" in joined else ""
        return "OpenBLAS" + (f" ({variant})" if variant else "")
    if "mkl" in joined:
        return "MKL"
    if "blis" in joined:
        return "BLIS"
    if "atlas" in joined:
        return "ATLAS"
    if "/blas/libblas" in joined:
        return "reference BLAS (netlib libblas3)"
    return "unknown"


def bench(size, batch, warmup, steps):
    torch.manual_seed(1)
    model = modified_alexnet()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--configs", default="224:4,224:64,64:64", help="SIZE:BATCH,... (default %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # Run one tiny matmul first so that the BLAS is loaded before it is named.
    torch.randn(8, 8) @ torch.randn(8, 8)
    libs = loaded_blas()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads")
    print("torch.__config__.show():")
    for line in torch.__config__.show().splitlines():
        line = line.strip()
        if line.startswith("- Build settings"):
            line = line.split(":", 1)[1]
            keep = [kv.strip() for kv in line.split(",") if kv.strip().split("=")[0] in ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP")]
            print("  - build settings:", ", ".join(keep))
        elif line:
            print("  " + line)
    print("mapped BLAS/LAPACK:", ", ".join(libs) if libs else "none")
    print(f"BLAS: {blas_name(libs)}")
    for cfg in args.configs.split(","):
        size, batch = (int(v) for v in cfg.split(":"))
        med, times = bench(size, batch, args.warmup, args.steps)
        ips = batch / med
        print(f"torch {size}x{size} batch {batch}: median {med * 1e3:.1f} ms per step over {len(times)} steps "
              f"(after {args.warmup} warm-up), {ips:.1f} images/s", flush=True)
        print(f"RESULT torch size={size} batch={batch} median_ms={med * 1e3:.2f} images_per_s={ips:.2f}", flush=True)


if __name__ == "__main__":
    main()
