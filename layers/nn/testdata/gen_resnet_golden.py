#!/usr/bin/python3
"""Generate the ResNet golden files for package vktrain/layers/nn.

Run with Debian's python3-torch / python3-torchvision (torch 1.13, torchvision 0.14):

    cd layers/nn/testdata && /usr/bin/python3 gen_resnet_golden.py

Writes resnet18.txt and resnet50.txt (print(torchvision.models.resnetNN())) and
resnet.json: for both, every state_dict entry (parameters and buffers) with its
shape, the parameter count, and the output shape of each top-level module at
224x224 (batch 1); the same state_dict after the classifier surgery
(fc -> Linear(512, 10)) for ResNet-18.
"""
import json

import torch
import torch.nn as nn
import torchvision


def describe(model):
    sd = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    shapes = []
    hooks = [mod.register_forward_hook(lambda m, i, o, name=name: shapes.append([name, list(o.shape)[1:]]))
             for name, mod in model.named_children()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    return {"state_dict": sd, "params": sum(p.numel() for p in model.parameters()), "shapes_224": shapes}


golden = {"torch": torch.__version__, "torchvision": torchvision.__version__}
for name in ["resnet18", "resnet50"]:
    model = getattr(torchvision.models, name)()
    with open(name + ".txt", "w") as f:
        f.write(str(model) + "\n")
    golden[name] = describe(model)
model = torchvision.models.resnet18()
model.fc = nn.Linear(512, 10)
golden["resnet18_surgery_state_dict"] = [[k, list(v.shape)] for k, v in model.state_dict().items()]
with open("resnet.json", "w") as f:
    json.dump(golden, f, indent=1)
    f.write("\n")
