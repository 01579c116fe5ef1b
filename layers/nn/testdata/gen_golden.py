#!/usr/bin/python3
"""Generate the golden files for package vktrain/layers/nn.

Run with Debian's python3-torch / python3-torchvision (torch 1.13, torchvision 0.14):

    cd layers/nn/testdata && /usr/bin/python3 gen_golden.py

Writes:
  alexnet.txt          print(torchvision.models.alexnet())
  alexnet_surgery.txt  the same after classifier[4] = Linear(4096, 1024),
                       classifier[6] = Linear(1024, 10) (the reference experiment)
  alexnet.json         torch/torchvision versions, state_dict names and shapes of
                       both models, every module's output shape at 224x224 and
                       64x64 input (batch 1) for the modified model, and the repr and
                       output shape of a few single modules off AlexNet's defaults.
"""
import json

import torch
import torch.nn as nn
import torchvision

torch.manual_seed(0)
model = torchvision.models.alexnet()
before = str(model)
sd_before = [[k, list(v.shape)] for k, v in model.state_dict().items()]

model.classifier[4] = nn.Linear(4096, 1024)
model.classifier[6] = nn.Linear(1024, 10)
after = str(model)
sd_after = [[k, list(v.shape)] for k, v in model.state_dict().items()]


def shapes(size):
    out = []
    hooks = []
    for name, mod in model.named_modules():
        if name == "" or isinstance(mod, nn.Sequential):
            continue

        def hook(m, inp, outp, name=name):
            out.append([name, list(outp.shape)])

        hooks.append(mod.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return out


with open("alexnet.txt", "w") as f:
    f.write(before + "\n")
with open("alexnet_surgery.txt", "w") as f:
    f.write(after + "\n")
# Single modules off AlexNet's defaults: their repr and output shape for an input,
# so that the Go formulas (floor, ceil_mode, dilation, groups) are judged by torch.
cases = [
    (nn.Conv2d(3, 8, 3), [1, 3, 10, 10]),
    (nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False), [1, 4, 17, 9]),
    (nn.Conv2d(6, 6, 7, stride=3, padding=0), [1, 6, 20, 31]),
    (nn.MaxPool2d(3, 2), [1, 2, 14, 14]),
    (nn.MaxPool2d(3, 2, ceil_mode=True), [1, 2, 14, 14]),
    (nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), [1, 2, 13, 13]),
    (nn.MaxPool2d(2, 3, padding=1, dilation=2, ceil_mode=True), [1, 2, 9, 12]),
    (nn.MaxPool2d(4, 1, padding=2), [1, 2, 5, 5]),
    (nn.AdaptiveAvgPool2d((3, 4)), [1, 5, 1, 1]),
    (nn.ReLU(), [1, 7]),
    (nn.Dropout(0.25), [1, 7]),
    (nn.Dropout(), [1, 7]),
    (nn.Linear(7, 3, bias=False), [1, 7]),
]
modules = []
for mod, shape in cases:
    with torch.no_grad():
        out = mod.eval()(torch.zeros(shape))
    modules.append([str(mod), shape[1:], list(out.shape)[1:]])

golden = {
    "torch": torch.__version__,
    "torchvision": torchvision.__version__,
    "state_dict": sd_before,
    "state_dict_surgery": sd_after,
    "trainable_surgery": sum(p.numel() for p in model.parameters() if p.requires_grad),
    "shapes_224": shapes(224),
    "shapes_64": shapes(64),
    "modules": modules,
}
with open("alexnet.json", "w") as f:
    # One key per line, one list entry per line: readable diffs, still plain JSON.
    keys = list(golden)
    f.write("{\n")
    for i, k in enumerate(keys):
        v = golden[k]
        f.write(" %s: " % json.dumps(k))
        if isinstance(v, list):
            f.write("[\n" + ",\n".join("  " + json.dumps(e) for e in v) + "\n ]")
        else:
            f.write(json.dumps(v))
        f.write(",\n" if i + 1 < len(keys) else "\n")
    f.write("}\n")
