#!/usr/bin/env bash
# make compare-learning: vktrain and PyTorch (torch_train.py, Debian's
# python3-torch on the CPU) trained under the same recipe on the same data, the
# same seeds each: the modified AlexNet from scratch with PyTorch's default
# initialisation, preprocessing (resize size*8/7, centre crop, ImageNet
# normalisation), SGD with momentum, the learning-rate schedule. Data order and
# dropout masks differ by construction, hence several seeds. Prints every run's
# test accuracy per epoch and, per framework, the mean and spread (min-max) over
# the seeds; draws every run's test accuracy into OUT/compare.png (vktrain plot).
# Run from the repository root. Settings (environment):
#   CMP_DATA     CIFAR-10 binary files (default ../shared/data/cifar-10-full, all 50,000)
#   CMP_SIZE     input side (64)         CMP_BATCH   batch (64)
#   CMP_EPOCHS   epochs (3)              CMP_LR      peak learning rate (0.01)
#   CMP_SCHEDULE constant|cosine (constant)  CMP_WARMUP warm-up epochs (0)
#   CMP_SEEDS    seeds ("1 2 3")         CMP_TRAIN_LIMIT / CMP_TEST_LIMIT (0: all)
#   CMP_SMOOTHING label smoothing of the training loss (0)
#   CMP_THREADS  PyTorch's threads (2)   CMP_OUT     runs directory (runs/compare)
#   CMP_MODEL    alexnet|resnet18 (alexnet: the modified AlexNet; resnet18: fc -> Linear(512, 10))
#   VKTRAIN      the vktrain binary (bin/vktrain)
set -euo pipefail
data=${CMP_DATA:-../shared/data/cifar-10-full}
size=${CMP_SIZE:-64} batch=${CMP_BATCH:-64} epochs=${CMP_EPOCHS:-3} lr=${CMP_LR:-0.01}
schedule=${CMP_SCHEDULE:-constant} warmup=${CMP_WARMUP:-0} smoothing=${CMP_SMOOTHING:-0}
seeds=${CMP_SEEDS:-1 2 3} threads=${CMP_THREADS:-2} model=${CMP_MODEL:-alexnet}
out=${CMP_OUT:-runs/compare} vktrain=${VKTRAIN:-bin/vktrain}
limits=(--train-limit "${CMP_TRAIN_LIMIT:-0}" --test-limit "${CMP_TEST_LIMIT:-0}")
recipe=(--model "$model" --image-size "$size" --batch "$batch" --epochs "$epochs" --lr "$lr" --momentum 0.9
  --lr-schedule "$schedule" --warmup-epochs "$warmup" --label-smoothing "$smoothing" "${limits[@]}")
[ -f "$data/data_batch_1.bin" ] || { echo "compare-learning: no CIFAR-10 files in $data (set CMP_DATA)" >&2; exit 1; }
mkdir -p "$out"
runs=()
for seed in $seeds; do
  for fw in vktrain torch; do
    dir=$out/$fw-seed$seed
    rm -rf "$dir"
    echo "== $fw, seed $seed -> $dir"
    if [ $fw = vktrain ]; then
      "$vktrain" train --data "$data" --pretrained none --init torch --seed "$seed" --log-every 100 --quiet \
        "${recipe[@]}" --out "$dir" | grep -E '^\[|^Accuracy of|^Expected'
    else
      /usr/bin/python3 layers/testdata/torch_train.py --data "$data" --seed "$seed" --log-every 100 \
        --threads "$threads" "${recipe[@]}" --out "$dir" | grep -E '^\[|^epoch|BLAS'
    fi
    runs+=("$dir")
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
for fw in acc:
    for ep in sorted(acc[fw]):
        a, l = acc[fw][ep], loss[fw][ep]
        print(f"  {fw:8s} epoch {ep}: accuracy {sum(a)/len(a):5.1f} [{min(a):.1f}, {max(a):.1f}]  "
              f"loss {sum(l)/len(l):.3f} [{min(l):.3f}, {max(l):.3f}]  ({len(a)} seeds)")
fws = list(acc)
if len(fws) == 2:
    last = max(acc[fws[0]])
    m = [sum(acc[f][last]) / len(acc[f][last]) for f in fws]
    print(f"gap at epoch {last}: {fws[0]} - {fws[1]} = {m[0] - m[1]:+.1f} points")
PY
"$vktrain" plot --out "$out" "${runs[@]}" | grep compare.png
