#!/usr/bin/env bash
# make track-torch: vktrain followed step by step against PyTorch (torch_train.py,
# Debian's python3-torch on the CPU) from the very same starting parameters, with
# nothing random left in either: PyTorch initialises the modified model and
# writes its state_dict (torch_train.py --save-init, trained from exactly that),
# vktrain starts from that file (vktrain train --init-from); both with dropout
# off (--dropout 0), the training images in file order every epoch
# (--data-order sequential), no augmentation, the same preprocessing (PyTorch's
# resize taken from vktrain's rule, train.ResizeFor: --resize (size*8+6)/7, 74 at 64,
# where torch_train.py's default floors to 73), loss, SGD with momentum and
# constant learning rate. What is left between them is
# floating-point rounding (other summation orders, Winograd or im2col against
# PyTorch's own convolutions), which training amplifies step by step. Prints per
# logged step both running losses (the mean over the last TRK_LOG_EVERY steps,
# from each run's metrics.jsonl at full precision) and their relative difference
# |vktrain - torch| / torch, then a summary: the first logged step where the
# relative difference exceeds 1% and 10%, its largest value over the first 50,
# 100 and 200 steps, each framework's test accuracy per epoch, and how far apart the
# trained parameters end: per tensor ||vktrain - torch|| / ||torch - init|| (the gap
# between the two as a fraction of how far training moved the tensor; the loss alone,
# flat near ln 10 while AlexNet from scratch leaves its first plateau, says little).
# Run from the repository root. Settings (environment):
#   TRK_DATA     CIFAR-10 binary files (default ../shared/data/cifar-10-batches-bin,
#                the 10,000-image subset)
#   TRK_MODEL    alexnet|resnet18 (alexnet)   TRK_SEED    PyTorch's initialisation (1)
#   TRK_SIZE     input side (64)              TRK_BATCH   batch (64)
#   TRK_EPOCHS   epochs (2)                   TRK_LR      learning rate (0.01)
#   TRK_MOMENTUM SGD momentum (0.9)           TRK_LOG_EVERY steps per logged running loss (10)
#   TRK_TRAIN_LIMIT first N training images (6400: 100 steps per epoch at batch 64; 0: all)
#   TRK_TEST_LIMIT  first N test images, evaluated after each epoch (256)
#   TRK_CONV     vktrain's --conv (auto)      TRK_THREADS PyTorch's threads (2)
#   TRK_OUT      directory of both runs and init.pth (runs/track; emptied first)
#   VKTRAIN      the vktrain binary (bin/vktrain)
set -euo pipefail
data=${TRK_DATA:-../shared/data/cifar-10-batches-bin} model=${TRK_MODEL:-alexnet} seed=${TRK_SEED:-1}
size=${TRK_SIZE:-64} batch=${TRK_BATCH:-64} epochs=${TRK_EPOCHS:-2} lr=${TRK_LR:-0.01}
momentum=${TRK_MOMENTUM:-0.9} log_every=${TRK_LOG_EVERY:-10} conv=${TRK_CONV:-auto} threads=${TRK_THREADS:-2}
out=${TRK_OUT:-runs/track} vktrain=${VKTRAIN:-bin/vktrain}
recipe=(--model "$model" --image-size "$size" --batch "$batch" --epochs "$epochs" --lr "$lr" --momentum "$momentum"
  --log-every "$log_every" --train-limit "${TRK_TRAIN_LIMIT:-6400}" --test-limit "${TRK_TEST_LIMIT:-256}"
  --dropout 0 --data-order sequential)
[ -f "$data/data_batch_1.bin" ] || { echo "track-torch: no CIFAR-10 files in $data (set TRK_DATA)" >&2; exit 1; }
[ -x "$vktrain" ] || { echo "track-torch: no vktrain binary at $vktrain (make build, or set VKTRAIN)" >&2; exit 1; }
rm -rf "$out/torch" "$out/vktrain" "$out/init.pth" "$out/torch-final.pth"
mkdir -p "$out"
echo "== PyTorch: initial parameters -> $out/init.pth, training -> $out/torch"
start=$(date +%s)
/usr/bin/python3 layers/testdata/torch_train.py --data "$data" --seed "$seed" --threads "$threads" \
  --resize $(( (size * 8 + 6) / 7 )) --save-init "$out/init.pth" --save-final "$out/torch-final.pth" "${recipe[@]}" --out "$out/torch" | grep -E '^epoch|BLAS|written'
echo "   $(( $(date +%s) - start )) s"
echo "== vktrain: from $out/init.pth -> $out/vktrain"
start=$(date +%s)
"$vktrain" train --data "$data" --init-from "$out/init.pth" --conv "$conv" --quiet "${recipe[@]}" \
  --out "$out/vktrain" | grep -E '^Accuracy of|^Expected'
echo "   $(( $(date +%s) - start )) s"
echo
/usr/bin/python3 - "$out" <<'PY'
import json, os, sys
import torch
sys.path.insert(0, "layers/testdata")
from torch_train import read_safetensors  # noqa: E402
out = sys.argv[1]

def read(path):
    steps, epochs = {}, {}
    for line in open(path):
        r = json.loads(line)
        if r.get("kind") == "step":
            steps[r["step"]] = r["running_loss"]
        elif r.get("kind") == "epoch":
            epochs[r["epoch"]] = r["test_acc"]
    return steps, epochs

(ts, te), (vs, ve) = read(f"{out}/torch/metrics.jsonl"), read(f"{out}/vktrain/metrics.jsonl")
common = sorted(set(ts) & set(vs))
if not common:
    sys.exit("track-torch: the two runs share no logged step")
rel = {s: abs(vs[s] - ts[s]) / ts[s] for s in common}
print("running loss per logged step (mean over the steps since the last one)")
print(f"{'step':>6} {'torch':>10} {'vktrain':>10} {'rel. diff':>10}")
for s in common:
    print(f"{s:6d} {ts[s]:10.6f} {vs[s]:10.6f} {100 * rel[s]:9.4f}%")
print()
print(f"summary over {len(common)} logged steps (steps {common[0]}-{common[-1]}):")
for bound in (0.01, 0.10):
    first = next((s for s in common if rel[s] > bound), None)
    print(f"  first step with relative difference > {100 * bound:.0f}%: " +
          (f"{first}" if first is not None else f"none up to step {common[-1]}"))
for n in (50, 100, 200):
    within = [s for s in common if s <= n]
    if common[-1] < n or not within:
        print(f"  max relative difference over the first {n} steps: n/a (the runs logged up to step {common[-1]})")
        continue
    worst = max(within, key=lambda s: rel[s])
    print(f"  max relative difference over the first {n} steps: {100 * rel[worst]:.4f}% (step {worst})")
for ep in sorted(set(te) & set(ve)):
    print(f"  epoch {ep} test accuracy: torch {100 * te[ep]:.1f}%, vktrain {100 * ve[ep]:.1f}%")
init = torch.load(f"{out}/init.pth")
final_t = torch.load(f"{out}/torch-final.pth")
final_v = read_safetensors(f"{out}/vktrain/checkpoint.safetensors")
print(f"trained parameters after step {common[-1]}: ||vktrain - torch|| / ||torch - init|| per tensor")
gap2 = moved2 = 0.0
for name, t0 in init.items():
    if not t0.is_floating_point():
        continue  # num_batches_tracked
    t, v = final_t[name].double(), final_v[name].double().reshape(t0.shape)
    gap, moved = (v - t).norm().item(), (t - t0.double()).norm().item()
    gap2, moved2 = gap2 + gap ** 2, moved2 + moved ** 2
    print(f"  {name:22s} {gap / moved if moved else float('nan'):10.3e}   (moved {moved:.4g}, |torch| {t.norm().item():.4g})")
print(f"  {'all':22s} {(gap2 / moved2) ** 0.5 if moved2 else float('nan'):10.3e}")
PY
