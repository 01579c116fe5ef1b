#!/usr/bin/env bash
# make bench-step: a full training step (forward, loss, backward, SGD lr 0.001
# momentum 0.9) of the modified AlexNet, vktrain (layers.BenchmarkTrainStep on
# the default Vulkan device) beside PyTorch on the CPU (torch_step_bench.py,
# torch.set_num_threads(2)), at 224 with batch 4 and 64 and at 64x64 with batch
# 64, in images/s, with their ratio. Run from the repository root.
#   BENCH_STEPS  timed steps per configuration after warm-up (default 3)
#   GO           the go command (default go)
set -euo pipefail
steps=${BENCH_STEPS:-3}
go=${GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== PyTorch (CPU, 2 threads)"
/usr/bin/python3 layers/testdata/torch_step_bench.py --threads 2 --warmup 2 --steps "$steps" \
  --configs 224:4,224:64,64:64 | tee "$tmp/torch.txt"
echo
echo "== vktrain (layers.BenchmarkTrainStep, $steps steps after one warm-up)"
"$go" test -run '^$' -bench '^BenchmarkTrainStep$' -benchtime "${steps}x" -timeout 60m ./layers/ | tee "$tmp/go.txt"
echo

blas=$(sed -n 's/^BLAS: //p' "$tmp/torch.txt")
device=$(sed -n 's/.*device \(.*\), GEMM \([a-z]*\);.*/\1, GEMM \2/p' "$tmp/go.txt" | head -1)
echo "== training step, images/s (vktrain on ${device:-the default device}; PyTorch with ${blas:-an unknown BLAS})"
awk '
  /^RESULT torch / {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["size"] " " f["batch"]; torch[key] = f["images_per_s"]; torchms[key] = f["median_ms"]
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
  }
  /^BenchmarkTrainStep\/size=/ {
    split($1, p, "/"); sub("size=", "", p[2]); sub("batch=", "", p[3]); sub("-[0-9]+$", "", p[3])
    key = p[2] " " p[3]
    for (i = 3; i < NF; i++) {
      if ($(i + 1) == "images/s") vk[key] = $i
      if ($(i + 1) == "ms/step") vkms[key] = $i
      if ($(i + 1) == "gpu-ms/step") vkgpu[key] = $i
    }
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
  }
  END {
    printf "%-16s %14s %14s %14s %14s %16s\n", "run", "vktrain ms", "(gpu ms)", "vktrain img/s", "torch img/s", "vktrain/torch"
    for (j = 1; j <= n; j++) {
      key = order[j]; split(key, sb, " ")
      ratio = (torch[key] > 0 && vk[key] != "") ? sprintf("%.2f", vk[key] / torch[key]) : "-"
      printf "%-16s %14s %14s %14s %14s %16s\n", sb[1] "x" sb[1] " b" sb[2], vkms[key], vkgpu[key], vk[key], torch[key], ratio
    }
  }' "$tmp/torch.txt" "$tmp/go.txt"
