#!/usr/bin/env bash
# make compare-learning: vktrain and PyTorch (torch_train.py, Debian's
# python3-torch on the CPU) trained under the same recipe on the same data, the
# same seeds each: the modified AlexNet from scratch with PyTorch's default
# initialisation, preprocessing (resize size*8/7, centre crop, ImageNet
# normalisation), SGD with momentum, the learning-rate schedule. Data order and
# dropout masks differ by construction, hence several seeds. Prints every run's
# test accuracy per epoch and, per framework, the mean and spread (min-max) over
# the seeds; draws both frameworks' training loss and test accuracy per epoch,
# mean and min-max band over the seeds, into OUT/compare.png (vktrain plot).
# Run from the repository root. Settings (environment):
#   CMP_DATA     CIFAR-10 binary files (default ../shared/data/cifar-10-full, all 50,000)
#   CMP_SIZE     input side (64)         CMP_BATCH   batch (64)
#   CMP_EPOCHS   epochs (3)              CMP_LR      peak learning rate (0.01)
#   CMP_SCHEDULE constant|cosine (constant)  CMP_WARMUP warm-up epochs (0)
#   CMP_SEEDS    seeds ("1 2 3")         CMP_TRAIN_LIMIT / CMP_TEST_LIMIT (0: all)
#   CMP_SMOOTHING label smoothing of the training loss (0)
#   CMP_WD       weight decay (0)        CMP_AUGMENT 1: random crop shift and flip (0)
#   CMP_INIT     torch|kaiming: the initialisation scheme (torch: PyTorch's defaults)
#   CMP_THREADS  PyTorch's threads (2)   CMP_OUT     runs directory (runs/compare)
#   CMP_MODEL    alexnet|resnet18 (alexnet: the modified AlexNet; resnet18: fc -> Linear(512, 10))
#   CMP_FRAMEWORKS the frameworks in the order they run ("torch vktrain": PyTorch's
#                shorter runs first, so its seeds set the target early)
#   CMP_RESUME   1: keep the runs that already have every epoch in CMP_OUT, continue
#                an unfinished vktrain run from its checkpoint (vktrain train --resume)
#                and redo an unfinished PyTorch run, so that a comparison hours long
#                can be run in parts; 0 (default): every run from scratch
#   CMP_SAME_INIT 1: every vktrain run starts from the initial parameters of
#                PyTorch's run of the same seed (torch_train.py --save-init, then
#                vktrain train --init-from), so that only the data order and the
#                dropout masks differ; PyTorch's runs must come first (0)
#   VKTRAIN      the vktrain binary (bin/vktrain)
set -euo pipefail
data=${CMP_DATA:-../shared/data/cifar-10-full}
size=${CMP_SIZE:-64} batch=${CMP_BATCH:-64} epochs=${CMP_EPOCHS:-3} lr=${CMP_LR:-0.01}
schedule=${CMP_SCHEDULE:-constant} warmup=${CMP_WARMUP:-0} smoothing=${CMP_SMOOTHING:-0}
wd=${CMP_WD:-0} augment=${CMP_AUGMENT:-0} init=${CMP_INIT:-torch}
seeds=${CMP_SEEDS:-1 2 3} threads=${CMP_THREADS:-2} model=${CMP_MODEL:-alexnet}
frameworks=${CMP_FRAMEWORKS:-torch vktrain} resume=${CMP_RESUME:-0} same_init=${CMP_SAME_INIT:-0}
out=${CMP_OUT:-runs/compare} vktrain=${VKTRAIN:-bin/vktrain}
limits=(--train-limit "${CMP_TRAIN_LIMIT:-0}" --test-limit "${CMP_TEST_LIMIT:-0}")
recipe=(--model "$model" --image-size "$size" --batch "$batch" --epochs "$epochs" --lr "$lr" --momentum 0.9
  --lr-schedule "$schedule" --warmup-epochs "$warmup" --label-smoothing "$smoothing" --weight-decay "$wd"
  --init "$init" "${limits[@]}")
case $same_init in 0|1) ;; *) echo "compare-learning: CMP_SAME_INIT=$same_init: want 0 or 1" >&2; exit 1 ;; esac
case $augment in 0) ;; 1) recipe+=(--augment) ;; *) echo "compare-learning: CMP_AUGMENT=$augment: want 0 or 1" >&2; exit 1 ;; esac
[ -f "$data/data_batch_1.bin" ] || { echo "compare-learning: no CIFAR-10 files in $data (set CMP_DATA)" >&2; exit 1; }
mkdir -p "$out"
# epochs_done DIR: how many epoch records DIR/metrics.jsonl holds (0 without one).
epochs_done() {
  [ -f "$1/metrics.jsonl" ] || { echo 0; return; }
  grep -cE '"kind": ?"epoch"' "$1/metrics.jsonl" || true
}
for fw in $frameworks; do
  case $fw in vktrain|torch) ;; *) echo "compare-learning: unknown framework $fw in CMP_FRAMEWORKS" >&2; exit 1 ;; esac
done
runs=()
for fw in $frameworks; do
  for seed in $seeds; do
    dir=$out/$fw-seed$seed
    runs+=("$dir")
    if [ "$resume" = 1 ] && [ "$(epochs_done "$dir")" -ge "$epochs" ]; then
      echo "== $fw, seed $seed: $dir has all $epochs epochs, kept"
      continue
    fi
    # A checkpoint continues only under the same recipe's epoch count (config.json).
    if [ "$resume" = 1 ] && [ $fw = vktrain ] && [ -f "$dir/checkpoint.safetensors" ] &&
      grep -qE "\"epochs\": ?$epochs[,}]" "$dir/config.json" 2>/dev/null; then
      echo "== $fw, seed $seed: continuing $dir from its checkpoint"
      "$vktrain" train --resume "$dir" --quiet | grep -E '^\[|^Accuracy of|^Expected'
      continue
    fi
    rm -rf "$dir"
    echo "== $fw, seed $seed -> $dir"
    if [ $fw = vktrain ]; then
      init_from=()
      if [ "$same_init" = 1 ]; then
        init_from=(--init-from "$out/torch-seed$seed/init.pth")
        [ -f "$out/torch-seed$seed/init.pth" ] || { echo "compare-learning: CMP_SAME_INIT=1 but no $out/torch-seed$seed/init.pth: run PyTorch's seed $seed first (CMP_FRAMEWORKS=\"torch vktrain\")" >&2; exit 1; }
      fi
      "$vktrain" train --data "$data" --pretrained none --seed "$seed" --log-every 100 --quiet \
        "${recipe[@]}" "${init_from[@]}" --out "$dir" | grep -E '^\[|^Accuracy of|^Expected'
    else
      save_init=()
      [ "$same_init" = 1 ] && mkdir -p "$dir" && save_init=(--save-init "$dir/init.pth")
      /usr/bin/python3 layers/testdata/torch_train.py --data "$data" --seed "$seed" --log-every 100 \
        --threads "$threads" "${recipe[@]}" "${save_init[@]}" --out "$dir" | grep -E '^\[|^epoch|BLAS'
    fi
  done
done
echo
/usr/bin/python3 - "${runs[@]}" <<'PY'
import json, sys
from collections import defaultdict
acc, loss = defaultdict(lambda: defaultdict(list)), defaultdict(lambda: defaultdict(list))
for d in sys.argv[1:]:
    fw = d.rstrip("/").split("/")[-1].split("-seed")[0]
    for line in open(d + "/metrics.jsonl"):
        r = json.loads(line)
        if r.get("kind") == "epoch":
            acc[fw][r["epoch"]].append(100 * r["test_acc"])
            loss[fw][r["epoch"]].append(r["train_loss"])
print("test accuracy (%) and training loss per epoch: mean [min, max] over seeds")
for fw in sorted(acc, key=lambda f: f != "vktrain"):
    for ep in sorted(acc[fw]):
        a, l = acc[fw][ep], loss[fw][ep]
        print(f"  {fw:8s} epoch {ep}: accuracy {sum(a)/len(a):5.1f} [{min(a):.1f}, {max(a):.1f}]  "
              f"loss {sum(l)/len(l):.3f} [{min(l):.3f}, {max(l):.3f}]  ({len(a)} seeds)")
fws = sorted(acc, key=lambda f: f != "vktrain")  # vktrain first: the gap is vktrain - torch
last = max(set(acc[fws[0]]) & set(acc[fws[1]]), default=None) if len(fws) == 2 else None
if last is not None:
    m = [sum(acc[f][last]) / len(acc[f][last]) for f in fws]
    print(f"gap at epoch {last}: {fws[0]} - {fws[1]} = {m[0] - m[1]:+.1f} points")
PY
"$vktrain" plot --out "$out" "${runs[@]}" | grep compare.png
