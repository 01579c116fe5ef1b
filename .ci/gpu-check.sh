#!/usr/bin/env bash
# The whole GPU check, run on a GPU machine from a bundle made by `make gpu-bundle`
# (no Go toolchain and no package registry needed there):
#   1. unpack the Vulkan loader and validation layer; find the GPU's Vulkan driver
#      (stop with one line naming what is missing if there is none)
#   2. vktrain devices
#   3. the vk and layers tests with the validation layer (the tiled GEMM and the
#      staging path are what a discrete GPU runs)
#   4. PyTorch (CUDA) on the bench shapes, then vktrain bench --variants --compare
#      at 224 batch 4 and at 64x64 batch 64
#   5. full-size parity with PyTorch (fixtures made there on torch's CPU side)
#   6. the reference recipe from scratch (224, batch 4, lr 0.001, momentum 0.9)
#      over the 10,000-image batch, as many epochs as fit, evaluated on the 1,000
#      test images, with its figures
# Each step has its own time budget; the whole script ends by itself within
# GPU_CHECK_BUDGET seconds (default 480) and says which steps it did not reach.
#
# Usage: gpu-check.sh [--dry-run] [--bundle DIR] OUTDIR
#   OUTDIR gets at most 8 files: summary.md, log.txt, bench_224_b4.json,
#   bench_64_b64.json, torch_224_b4.json, torch_64_b64.json, train_run.tar.gz
#   (the run's metrics, figures and config; no checkpoint). A dry run writes
#   bench_64_b2.json and torch_64_b2.json instead.
#   --dry-run: on any Vulkan device (lavapipe included) with tiny budgets and
#   shapes, PyTorch on the CPU (skipped if not installed): make gpu-dryrun runs
#   it in CI so that this script cannot rot.
#   --bundle: the bundle (default: the one this script sits in, else .gpu-bundle).
set -uo pipefail

dry=0
bundle=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --bundle) bundle=$2; shift 2 ;;
    -*) echo "gpu-check: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: gpu-check.sh [--dry-run] [--bundle DIR] OUTDIR" >&2; exit 2; }
out=$1
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$bundle" ]; then
  if [ -f "$here/../../payload.tar.xz" ]; then bundle="$here/../.."; else bundle=.gpu-bundle; fi
fi
[ -f "$bundle/payload.tar.xz" ] || { echo "gpu-check: no bundle at $bundle (make gpu-bundle builds one)" >&2; exit 2; }
bundle=$(cd "$bundle" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/payload"
xz -dc "$bundle/payload.tar.xz" | tar -C "$work/payload" -xf - || { echo "gpu-check: cannot unpack $bundle/payload.tar.xz" >&2; exit 1; }
bin=$work/payload/bin
tree=$bundle/tree
data=$work/payload/data/cifar-10-batches-bin
log=$out/log.txt
summary=$out/summary.md
: >"$log"

total=${GPU_CHECK_BUDGET:-480}
if [ "$dry" = 1 ]; then total=${GPU_CHECK_BUDGET:-300}; fi
start=$(date +%s)
deadline=$((start + total))
reserve=10 # seconds kept for the summary and the archive

rows=()
notreached=()
note() { echo "$*" | tee -a "$log"; }
left() { echo $((deadline - reserve - $(date +%s))); }

# step [-C DIR] NAME BUDGET CMD...: runs CMD (in DIR) with at most BUDGET seconds
# (less if less is left), its output appended to log.txt; records ok, FAILED,
# timed out or not reached.
step() {
  local dir=.
  if [ "$1" = -C ]; then dir=$2; shift 2; fi
  local name=$1 budget=$2
  shift 2
  local avail
  avail=$(left)
  if [ "$avail" -lt 5 ]; then
    rows+=("| $name | not reached (no time left) | 0 |")
    notreached+=("$name")
    note "== $name: not reached, no time left"
    return 1
  fi
  [ "$budget" -gt "$avail" ] && budget=$avail
  note "== $name (budget ${budget}s): $*"
  local t0 rc
  t0=$(date +%s)
  (cd "$dir" && exec timeout --kill-after=5 "$budget" "$@") >>"$log" 2>&1
  rc=$?
  local secs=$(($(date +%s) - t0)) status=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    status="timed out after ${budget}s"
    notreached+=("$name (timed out)")
  elif [ $rc -ne 0 ]; then
    status="FAILED (exit $rc)"
  fi
  rows+=("| $name | $status | $secs |")
  note "== $name: $status in ${secs}s"
  [ $rc -eq 0 ]
}

# 1. The Vulkan loader and validation layer from the bundle, unpacked privately.
vkroot=$work/vkroot
for deb in "$bundle"/debs/*.deb; do
  dpkg -x "$deb" "$vkroot" || { note "gpu-check: cannot unpack $deb (dpkg -x)"; exit 1; }
done
libdir=$vkroot/usr/lib/x86_64-linux-gnu
ln -sf libvulkan.so.1 "$libdir/libvulkan.so" # vulkan-go opens the unversioned name (libvulkan-dev's link)
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VK_LAYER_PATH=$vkroot/usr/share/vulkan/explicit_layer.d
# The driver: the standard ICD folders, else NVIDIA's container mount.
icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null | tr '\n' ' ')
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ] && [ "$dry" = 0 ]; then
    export VK_DRIVER_FILES=$f VK_ICD_FILENAMES=$f
    icds="$f"
    break
  fi
done
if [ -d /usr/local/nvidia/share/glvnd/egl_vendor.d ]; then
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export VKTRAIN_CACHE=$work/cache MESA_SHADER_CACHE_DIR=$work/mesa

note "gpu-check: bundle $bundle ($(head -1 "$bundle/MANIFEST" 2>/dev/null)), output $out, budget ${total}s$([ "$dry" = 1 ] && echo ', dry run')"
note "gpu-check: host $(uname -m), $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$log" 2>&1

# 2. A Vulkan device for the GPU, or one line saying what is missing.
if ! "$bin/vktrain" devices >"$work/devices.txt" 2>&1; then
  cat "$work/devices.txt" >>"$log"
  msg="gpu-check: no Vulkan device: $(tail -1 "$work/devices.txt") (ICD files: ${icds:-none found})"
  note "$msg"
  printf '# GPU check\n\n%s\n' "$msg" >"$summary"
  exit 1
fi
cat "$work/devices.txt" >>"$log"
rows+=("| vktrain devices | ok | 0 |")
if [ "$dry" = 0 ] && ! grep -Eq '^ +type +(discrete|integrated|virtual) GPU' "$work/devices.txt"; then
  msg="gpu-check: Vulkan finds only CPU devices: the GPU's Vulkan driver (ICD) is missing (looked in /usr/share/vulkan/icd.d, /etc/vulkan/icd.d, /usr/local/nvidia/share/vulkan/icd.d; found: ${icds:-none})"
  note "$msg"
  printf '# GPU check\n\n%s\n' "$msg" >"$summary"
  exit 1
fi
device=$(sed -n 's/^chosen: [0-9]* (\(.*\)): .*/\1/p' "$work/devices.txt" | head -1)
note "gpu-check: device ${device:-?}"

# 3. Tests with the validation layer on.
export VKTRAIN_VALIDATE=1
if [ "$dry" = 1 ]; then
  step "vk tests" 60 "$bin/vk.test" -test.count=1 -test.run 'TestFillSaxpyAdd|TestStagingPath|TestNoLeaks' -test.v
  step -C "$tree/layers" "layers tests" 90 "$bin/layers.test" -test.count=1 -test.short -test.run 'TestGEMMSplitC|TestNetworkParityStaged' -test.v
else
  step "vk tests" 60 "$bin/vk.test" -test.count=1 -test.v
  step -C "$tree/layers" "layers tests" 150 "$bin/layers.test" -test.count=1 -test.v
fi
unset VKTRAIN_VALIDATE

# 4. PyTorch beside vktrain on the same shapes.
# The first python3 that has torch: $PYTHON, the one on PATH (the GPU image's),
# Debian's (python3-torch).
have_torch=0
py=python3
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import torch' >/dev/null 2>&1; then py=$p have_torch=1; break; fi
done
[ $have_torch = 1 ] && note "gpu-check: PyTorch $("$py" -c 'import torch; print(torch.__version__, "CUDA" if torch.cuda.is_available() else "no CUDA")') from $py"
if [ "$dry" = 1 ]; then
  shapes="64:2"
  kern=(--kernels features.0,sgd --count 1)
  torchdev=(--device cpu --threads 2 --kernels features.0,sgd --count 1)
else
  shapes="224:4 64:64"
  kern=(--variants --budget 300ms)
  torchdev=(--device cuda --budget 0.3)
fi
for sb in $shapes; do
  size=${sb%%:*} batch=${sb##*:}
  name=${size}_b${batch}
  compare=()
  if [ $have_torch = 1 ]; then
    if step "torch bench $size b$batch" 60 "$py" "$tree/layers/bench/torch_bench.py" --image-size "$size" --batch "$batch" "${torchdev[@]}" --json "$out/torch_$name.json"; then
      compare=(--compare "$out/torch_$name.json")
    fi
  else
    rows+=("| torch bench $size b$batch | not reached (no torch) | 0 |")
    notreached+=("torch bench $size b$batch (python3 has no torch)")
  fi
  step "vktrain bench $size b$batch" 120 "$bin/vktrain" bench --image-size "$size" --batch "$batch" "${kern[@]}" "${compare[@]}" --json "$out/bench_$name.json"
done

# 5. Full-size parity with PyTorch (CPU side of torch makes the fixtures).
if [ $have_torch = 1 ]; then
  if step "parity fixtures (torch, CPU)" 90 env PARITY_DIR="$work/parity" "$py" "$tree/layers/testdata/gen_parity.py" --full; then
    run='^TestNetworkParityFull$'
    [ "$dry" = 1 ] && run='^TestNetworkParityFull$/texel'
    step -C "$tree/layers" "parity vs PyTorch (224, 2 SGD steps)" 90 env VKTRAIN_PARITY_DIR="$work/parity" VKTRAIN_VALIDATE=1 "$bin/layers.test" -test.count=1 -test.v -test.run "$run"
  fi
else
  rows+=("| parity vs PyTorch | not reached (no torch) | 0 |")
  notreached+=("parity (python3 has no torch)")
fi

# 6. The reference recipe from scratch, as many epochs as fit in what is left.
avail=$(($(left) - 20))
if [ "$dry" = 1 ]; then
  train=(--image-size 64 --batch 4 --epochs 1 --train-limit 16 --test-limit 8 --log-every 2)
else
  ips=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"]["wall_images_per_s"])' "$out/bench_224_b4.json" 2>/dev/null || echo 0)
  read -r epochs limit < <(python3 -c '
import sys
ips, avail, n, test = float(sys.argv[1]), float(sys.argv[2]), 10000, 1000
budget = 0.8 * avail - test / max(ips, 1e-9) / 3  # evaluation at about 3x the training rate
epochs = int(budget * ips // n)
print(max(epochs, 1), 0 if epochs >= 1 else max(4, int(budget * ips) // 4 * 4))' "$ips" "$avail")
  train=(--image-size 224 --batch 4 --lr 0.001 --momentum 0.9 --epochs "$epochs" --log-every 250)
  [ "$limit" != 0 ] && train+=(--train-limit "$limit")
  note "gpu-check: training at ${ips} images/s (bench) with ${avail}s left: ${train[*]}"
fi
if [ ! -d "$data" ]; then
  note "gpu-check: the bundle holds no CIFAR-10 subset: training on the synthetic set"
  data=synthetic
fi
step "train (reference recipe, from scratch)" "$avail" "$bin/vktrain" train --data "$data" --pretrained none "${train[@]}" --out "$work/run"
if [ -d "$work/run" ]; then
  tar -C "$work/run" -czf "$out/train_run.tar.gz" --exclude='*.safetensors' . 2>>"$log"
fi

# Summary.
{
  echo "# GPU check$([ "$dry" = 1 ] && echo ' (dry run)')"
  echo
  echo "device: ${device:-?}; bundle: $(head -1 "$bundle/MANIFEST" 2>/dev/null); $(($(date +%s) - start)) s of ${total} s"
  echo
  echo "| step | result | seconds |"
  echo "| --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
  echo
  if [ ${#notreached[@]} -gt 0 ]; then
    echo "not reached: $(printf '%s; ' "${notreached[@]}")"
  else
    echo "every step was reached"
  fi
  echo
  echo "Go tests (vk, layers, parity): $(grep -c '^--- PASS' "$log") top-level PASS, $(grep -c '^--- FAIL' "$log") FAIL, $(grep -c '^--- SKIP' "$log") SKIP"
  grep -E '^--- FAIL' "$log" | sed 's/^/    /' | head -20
  grep -E '^training step, batch|^inference:|^peaks:|Accuracy of the network|Expected training time' "$log" | sed 's/^/    /'
  echo
  echo "vktrain against PyTorch (speedup = PyTorch time / vktrain time):"
  grep -E '^comparing |^ +(training step \(batch|training images/s|inference batch)' "$log" | sed 's/^/    /'
} >"$summary"
cat "$summary"
grep -q 'FAILED' "$summary" && exit 1
exit 0
