#!/usr/bin/python3
"""PyTorch twin of `vktrain train` for learning-curve comparisons (run with
Debian's python3-torch and python3-torchvision): the same modified AlexNet
(torchvision's, classifier.4 -> Linear(4096, 1024), classifier.6 ->
Linear(1024, 10), PyTorch's default initialisation or vktrain's kaiming scheme
(--init), dropout 0.5), the same preprocessing (bilinear resize to size*8/7 rounded
up, centre crop, ImageNet mean and std: gen_parity.preprocess; --augment: vktrain's
crop shift and flip), weight decay, cross-entropy (label-smoothed by --label-smoothing in
training, as vktrain's; the test loss plain), SGD with momentum, constant or cosine
learning rate with linear warm-up (train.LRAt's rule), a fresh permutation of
the training set every epoch (--data-order sequential: the files' order, as
vktrain's). It reads the official CIFAR-10 binary files and
writes RUN_DIR/metrics.jsonl in vktrain's schema (train/metrics), so that
`vktrain plot RUN_DIR...` draws it beside vktrain's runs.

    /usr/bin/python3 layers/testdata/torch_train.py --data DIR --out RUN_DIR \\
        --image-size 64 --batch 64 --epochs 3 --lr 0.01 --seed 1

The data order and dropout masks differ from vktrain's by construction (another
RNG): compare several seeds. It prints which BLAS torch loaded.

To follow vktrain step by step instead (layers/testdata/track_torch.sh): the
same starting parameters (--save-init FILE writes the model's state_dict right
after initialisation, torch.save, the names `vktrain train --init-from FILE`
reads; --save-final FILE the trained one; --init-from FILE starts from a .pth or .safetensors state dict of the
modified model, e.g. vktrain export's), dropout off (--dropout 0: p of every
nn.Dropout) and the files' order (--data-order sequential).
"""
import argparse
import datetime
import json
import math
import os
import sys
import time

import torch
import torchvision
import torch.nn.functional as F
import struct

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_parity import MEAN, STD, preprocess  # noqa: E402
from torch_step_bench import blas_name, loaded_blas, modified_alexnet  # noqa: E402

CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
RECORD = 3073


def read_cifar(paths, limit):
    raw = b"".join(open(p, "rb").read() for p in paths)
    if len(raw) % RECORD:
        sys.exit(f"torch_train: {paths}: {len(raw)} bytes is not a whole number of {RECORD}-byte records")
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, RECORD)
    if limit:
        data = data[:limit]
    return data[:, 1:].clone(), data[:, 0].long()


def lr_at(args, step, steps_per_epoch):
    warm = round(args.warmup_epochs * steps_per_epoch)
    if step < warm:
        return args.lr * (step + 1) / warm
    if args.lr_schedule == "cosine":
        total = args.epochs * steps_per_epoch - warm
        return args.lr * (1 + math.cos(math.pi * (step - warm) / total)) / 2 if total > 0 else args.lr
    return args.lr


def preprocess_augmented(records, resize, crop, pad, gen):
    """preprocess with vktrain's training augmentation (shaders/preprocess.comp):
    the centre crop's window shifted by dy, dx drawn uniformly from [-pad, pad],
    pixels outside the resized image black (0 before normalisation), and a
    horizontal flip with probability 1/2: torchvision's RandomCrop(crop,
    padding) and RandomHorizontalFlip after the resize. The draws come from gen,
    so they differ from vktrain's (another RNG), as the data order does."""
    full = preprocess(records, resize, resize, double=True)  # the whole resized image, normalised
    n = full.shape[0]
    black = (-MEAN / STD).double().view(1, 3, 1, 1)  # a 0 pixel, normalised
    x = black.expand(n, 3, resize + 2 * pad, resize + 2 * pad).clone()
    x[:, :, pad:pad + resize, pad:pad + resize] = full
    off = int(round((resize - crop) / 2.0)) + pad
    shift = torch.randint(-pad, pad + 1, (n, 2), generator=gen)
    flip = torch.randint(0, 2, (n,), generator=gen)
    out = torch.empty(n, 3, crop, crop, dtype=torch.float64)
    for i in range(n):
        y0, x0 = off + int(shift[i, 0]), off + int(shift[i, 1])
        img = x[i, :, y0:y0 + crop, x0:x0 + crop]
        out[i] = img.flip(-1) if flip[i] else img
    return out.float()


def init_kaiming(model):
    """vktrain's --init kaiming (nn.InitKaiming, torchvision's VGG scheme):
    convolution weights kaiming_normal_ (fan_out, ReLU), linear weights normal
    with std 0.01, biases 0; BatchNorm as built (weight 1, bias 0)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, 0, 0.01)
        else:
            continue
        if m.bias is not None:
            torch.nn.init.zeros_(m.bias)


def read_safetensors(path):
    """The tensors of a .safetensors file (F32, F64, I64, I32; little-endian), by
    name: enough for vktrain's exports without the safetensors package."""
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] not in dtypes:
            sys.exit(f"torch_train: {path}: {name} is {t['dtype']}, not one of {sorted(dtypes)}")
        start, end = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[start:end]), dtype=dtypes[t["dtype"]]).reshape(t["shape"]).clone()
    return out


def load_init(model, path):
    """Loads every entry of model's state_dict from path (strict: a missing or
    extra entry is an error, as vktrain's --init-from)."""
    sd = read_safetensors(path) if path.endswith(".safetensors") else torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd and not torch.is_tensor(sd["state_dict"]):
        sd = sd["state_dict"]
    model.load_state_dict(sd, strict=True)


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def evaluate(model, x, y, args, resize):
    model.eval()
    confusion = torch.zeros(10, 10, dtype=torch.long)
    loss = 0.0
    with torch.no_grad():
        for i in range(0, len(y), args.batch):
            logits = model(preprocess(x[i:i + args.batch], resize, args.image_size))
            loss += F.cross_entropy(logits, y[i:i + args.batch], reduction="sum").item()
            pred = logits.argmax(1)
            for t, p in zip(y[i:i + args.batch].tolist(), pred.tolist()):
                confusion[t, p] += 1
    model.train()
    per_class = [(confusion[c, c] / confusion[c].sum()).item() if confusion[c].sum() else float("nan") for c in range(10)]
    return loss / len(y), confusion.trace().item() / len(y), per_class, confusion.tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder of the CIFAR-10 binary files")
    ap.add_argument("--out", required=True, help="run directory (metrics.jsonl)")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant")
    ap.add_argument("--warmup-epochs", type=float, default=0.0)
    ap.add_argument("--label-smoothing", type=float, default=0.0,
                    help="training loss: nn.CrossEntropyLoss(label_smoothing=eps), eps in [0, 1)")
    ap.add_argument("--model", choices=["alexnet", "resnet18"], default="alexnet",
                    help="the modified AlexNet, or torchvision's ResNet-18 with fc -> Linear(512, 10)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=None,
                    help="p of every nn.Dropout, in [0, 1) (default: the model's own, 0.5 for AlexNet; 0: off)")
    ap.add_argument("--data-order", choices=["shuffled", "sequential"], default="shuffled",
                    help="training images per epoch: a fresh permutation (shuffled) or the files' order (sequential)")
    ap.add_argument("--init-from", help="start from this .pth or .safetensors state dict of the modified model")
    ap.add_argument("--save-init", help="write the initial state_dict here (torch.save) before training")
    ap.add_argument("--save-final", help="write the trained state_dict here (torch.save) at the end")
    ap.add_argument("--augment", action="store_true",
                    help="vktrain's --augment: the crop window shifted up to 4*size/32 pixels each way "
                         "(black outside the image) and a random horizontal flip, training only")
    ap.add_argument("--init", choices=["torch", "kaiming"], default="torch",
                    help="torch: PyTorch's defaults (torchvision's model as built); kaiming: vktrain's --init kaiming")
    ap.add_argument("--resize", type=int, default=0,
                    help="side the images are resized to before the centre crop (default: vktrain's "
                         "train.ResizeFor, image-size*8/7 rounded up: 74 at 64, 256 at 224)")
    args = ap.parse_args()
    if not 0.0 <= args.label_smoothing < 1.0:
        ap.error(f"--label-smoothing {args.label_smoothing}: must be in [0, 1)")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        ap.error(f"--dropout {args.dropout}: must be in [0, 1)")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    names = sorted(f for f in os.listdir(args.data) if f.startswith("data_batch_"))
    x, y = read_cifar([os.path.join(args.data, f) for f in names], args.train_limit)
    tx, ty = read_cifar([os.path.join(args.data, "test_batch.bin")], args.test_limit)
    # The same side as vktrain's train.ResizeFor (rounded up): a floor (73 at 64)
    # made the first step's gradients differ by up to 74% (features.0).
    resize = args.resize or (args.image_size * 8 + 6) // 7
    if args.model == "resnet18":
        model = torchvision.models.resnet18(num_classes=1000)
        model.fc = torch.nn.Linear(512, 10)
    else:
        model = modified_alexnet()
    if args.init == "kaiming":
        init_kaiming(model)
    if args.dropout is not None:
        drops = [d for d in model.modules() if isinstance(d, torch.nn.Dropout)]
        if not drops and args.dropout != 0:
            ap.error(f"--dropout {args.dropout}: {args.model} has no Dropout layer")
        for d in drops:
            d.p = args.dropout
    if args.init_from:
        load_init(model, args.init_from)
    if args.save_init:
        torch.save(model.state_dict(), args.save_init)
        print(f"initial state_dict written to {args.save_init}", flush=True)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    steps = len(y) // args.batch
    blas = blas_name(loaded_blas())
    print(f"torch {torch.__version__}, {args.threads} threads, BLAS: {blas}; {len(y)} training and {len(ty)} test images, {steps} steps per epoch")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.jsonl"), "w") as out:
        def write(rec):
            out.write(json.dumps(rec) + "\n")
            out.flush()
        write({"kind": "config", "schema": 1, "model": args.model, "pretrained": False, "dataset": args.data,
               "image_size": args.image_size, "batch": args.batch, "epochs": args.epochs, "lr": args.lr,
               "momentum": args.momentum, "weight_decay": args.weight_decay, "seed": args.seed,
               "device": f"PyTorch {torch.__version__} CPU ({blas})", "classes": CLASSES, "train_images": len(y),
               "test_images": len(ty), "steps_per_epoch": steps, "log_every": args.log_every, "time": now(),
               "extra": {"framework": "pytorch", "lr_schedule": args.lr_schedule, "warmup_epochs": str(args.warmup_epochs),
                         "label_smoothing": str(args.label_smoothing), "data_order": args.data_order,
                         "dropout": "default" if args.dropout is None else str(args.dropout),
                         "init_from": args.init_from or "", "init": args.init, "augment": str(args.augment).lower()}})
        gen = torch.Generator().manual_seed(args.seed)
        aug_gen = torch.Generator().manual_seed(args.seed + 1000003)
        pad = 4 * args.image_size // 32  # train.inputParams' Pad
        step = 0
        for epoch in range(1, args.epochs + 1):
            order = torch.arange(len(y)) if args.data_order == "sequential" else torch.randperm(len(y), generator=gen)
            start = time.time()
            run_loss = run_n = ep_loss = ep_correct = 0
            for i in range(steps):
                idx = order[i * args.batch:(i + 1) * args.batch]
                for g in opt.param_groups:
                    g["lr"] = lr_at(args, step, steps)
                if args.augment:
                    inputs = preprocess_augmented(x[idx], resize, args.image_size, pad, aug_gen)
                else:
                    inputs = preprocess(x[idx], resize, args.image_size)
                logits = model(inputs)
                loss = F.cross_entropy(logits, y[idx], label_smoothing=args.label_smoothing)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                run_loss, run_n = run_loss + loss.item(), run_n + 1
                ep_loss += loss.item()
                ep_correct += (logits.argmax(1) == y[idx]).sum().item()
                if step % args.log_every == 0:
                    print(f"[{epoch}, {i + 1:5d}] loss: {run_loss / run_n:.3f}", flush=True)
                    write({"kind": "step", "epoch": epoch, "step": step, "images": step * args.batch,
                           "running_loss": run_loss / run_n, "train_acc": ep_correct / ((i + 1) * args.batch),
                           "lr": lr_at(args, step - 1, steps), "images_per_s": (i + 1) * args.batch / (time.time() - start),
                           "time": now()})
                    run_loss = run_n = 0
            seconds = time.time() - start
            test_loss, test_acc, per_class, confusion = evaluate(model, tx, ty, args, resize)
            print(f"epoch {epoch}: test accuracy {100 * test_acc:.1f}%, test loss {test_loss:.3f}", flush=True)
            write({"kind": "epoch", "epoch": epoch, "step": step, "train_loss": ep_loss / steps,
                   "train_acc": ep_correct / (steps * args.batch), "test_loss": test_loss, "test_acc": test_acc,
                   "per_class_acc": [None if math.isnan(a) else a for a in per_class], "confusion": confusion,
                   "epoch_seconds": seconds, "images_per_s": steps * args.batch / seconds, "time": now()})
    if args.save_final:
        torch.save(model.state_dict(), args.save_final)


if __name__ == "__main__":
    main()
