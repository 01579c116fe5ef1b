#!/usr/bin/env bash
# make bench-step: a full training step (forward, loss, backward, SGD lr 0.001
# momentum 0.9) of the modified AlexNet, vktrain (layers.BenchmarkTrainStep on
# the default Vulkan device) beside PyTorch on the CPU (torch_step_bench.py,
# torch.set_num_threads(2)), at 224 with batch 4 and 64 and at 64x64 with batch
# 64, in images/s, with their ratio. The two programs run interleaved, one
# configuration at a time (PyTorch, vktrain, PyTorch, vktrain, ...) for
# BENCH_ROUNDS rounds, so that a noisy machine moves both sides of each ratio
# alike; every round's ratio is printed. Run from the repository root.
#   BENCH_STEPS   timed steps per configuration after warm-up (default 3)
#   BENCH_ROUNDS  rounds (default 2)
#   BENCH_CONFIGS size:batch list (default 224:4,224:64,64:64)
#   GO            the go command (default go)
set -euo pipefail
steps=${BENCH_STEPS:-3}
rounds=${BENCH_ROUNDS:-2}
configs=${BENCH_CONFIGS:-224:4,224:64,64:64}
go=${GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$go" test -c -o "$tmp/layers.test" ./layers/
for round in $(seq 1 "$rounds"); do
  for cfg in ${configs//,/ }; do
    size=${cfg%%:*} batch=${cfg##*:}
    echo "== round $round, ${size}x${size} batch $batch: PyTorch (CPU, 2 threads)"
    /usr/bin/python3 layers/testdata/torch_step_bench.py --threads 2 --warmup 2 --steps "$steps" \
      --configs "$cfg" | tee "$tmp/torch.$round.$cfg.txt"
    echo "== round $round, ${size}x${size} batch $batch: vktrain (layers.BenchmarkTrainStep, $steps steps after one warm-up)"
    (cd layers && "$tmp/layers.test" -test.run '^$' -test.bench "^BenchmarkTrainStep\$/^size=$size/batch=$batch\$" \
      -test.benchtime "${steps}x" -test.timeout 60m) | tee "$tmp/go.$round.$cfg.txt"
  done
done
echo

blas=$(sed -n 's/^BLAS: //p' "$tmp"/torch.*.txt | head -1)
device=$(sed -n 's/.*device \(.*\), GEMM \([a-z]*\);.*/\1, GEMM \2/p' "$tmp"/go.*.txt | head -1)
echo "== training step, images/s (vktrain on ${device:-the default device}; PyTorch with ${blas:-an unknown BLAS}; host $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1))"
for round in $(seq 1 "$rounds"); do
  for cfg in ${configs//,/ }; do
    echo "ROUND $round"
    cat "$tmp/torch.$round.$cfg.txt" "$tmp/go.$round.$cfg.txt"
  done
done | awk '
  /^ROUND / { round = $2 }
  /^RESULT torch / {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = round " " f["size"] " " f["batch"]; torch[key] = f["images_per_s"]
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
  }
  /^BenchmarkTrainStep\/size=/ {
    split($1, p, "/"); sub("size=", "", p[2]); sub("batch=", "", p[3]); sub("-[0-9]+$", "", p[3])
    key = round " " p[2] " " p[3]
    for (i = 3; i < NF; i++) {
      if ($(i + 1) == "images/s") vk[key] = $i
      if ($(i + 1) == "ms/step") vkms[key] = $i
      if ($(i + 1) == "gpu-ms/step") vkgpu[key] = $i
    }
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
  }
  END {
    printf "%-6s %-12s %14s %14s %14s %14s %16s\n", "round", "run", "vktrain ms", "(gpu ms)", "vktrain img/s", "torch img/s", "vktrain/torch"
    for (j = 1; j <= n; j++) {
      key = order[j]; split(key, sb, " ")
      ratio = (torch[key] > 0 && vk[key] != "") ? sprintf("%.2f", vk[key] / torch[key]) : "-"
      printf "%-6s %-12s %14s %14s %14s %14s %16s\n", sb[1], sb[2] "x" sb[2] " b" sb[3], vkms[key], vkgpu[key], vk[key], torch[key], ratio
    }
  }'
