#!/usr/bin/python3
"""Makes the PyTorch parity fixtures for layers.Network (run with Debian's
python3-torch and python3-torchvision: /usr/bin/python3 gen_parity.py [--full]).

Default: a narrow AlexNet (torchvision's structure and state_dict names, smaller
widths) at 64x64 input, batch 4, two SGD steps (lr 0.001, momentum 0.9), dropout
p=0 (torch's dropout RNG cannot be reproduced), written as
  parity_small_weights.pth  the initial state_dict (torch.save, zip format)
  parity_small_io.pth       records, labels, per-step logits and loss, the
                            gradients of the second step, the parameters after it
--full: the same for the real torchvision AlexNet (surgery to 1024 and 10 classes)
at 224 into $PARITY_DIR (default /tmp/vktrain-parity), not committed; its two
steps are computed in float64 (from the float32 weights), so that the reference
does not depend on the CPU's oneDNN algorithms.
--adamw: the two steps by torch.optim.AdamW (lr 0.001, weight decay 0.01, the
default betas and eps) instead of SGD, into <name>_adamw_io.pth (the weights
file is the same: the seed draws the model and the records alike).
--groups: SGD (momentum 0.9) with two parameter groups, the features at lr
0.0002 and the rest at 0.001, into <name>_groups_io.pth.
--label-smoothing: SGD as by default, the loss
nn.CrossEntropyLoss(label_smoothing=0.1), into <name>_smooth_io.pth.
--resnet: narrow ResNets instead (torchvision's ResNet class and blocks, 4
channels wide at the stem, 64x64 input): parity_resnet_* (BasicBlocks, stages
of 2, 1, 1, 1 blocks) and parity_bottleneck_* (Bottlenecks, 1 per stage), their
BatchNorm weights, biases and running statistics drawn at random (not 1, 0, 0,
1) so that every term of the normalisation shows; two steps in float64 of SGD
in training mode (_io.pth), SGD with the model in eval mode (_eval_io.pth:
running statistics normalise and stay) and AdamW in training mode
(_adamw_io.pth, BasicBlocks only). "after." holds the whole state_dict after
the steps, buffers included.
--resnet18: torchvision's ResNet-18 (fc -> Linear(512, 10)) at 224, batch 2,
SGD and AdamW (eps 1e-3) in training mode and SGD in eval mode, into
$PARITY_DIR, its BatchNorm biases 1.5 to 2.5 standard deviations off 0, and
PyTorch's float32 run of each beside the float64 one ("f32." entries).
"""
import os
import sys

import torch
import torch.nn.functional as F
import torchvision

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def narrow_alexnet():
    m = torchvision.models.alexnet(num_classes=10, dropout=0.0)
    nn = torch.nn
    m.features[0] = nn.Conv2d(3, 8, 11, 4, 2)
    m.features[3] = nn.Conv2d(8, 16, 5, 1, 2)
    m.features[6] = nn.Conv2d(16, 24, 3, 1, 1)
    m.features[8] = nn.Conv2d(24, 16, 3, 1, 1)
    m.features[10] = nn.Conv2d(16, 16, 3, 1, 1)
    m.classifier[1] = nn.Linear(16 * 36, 32)
    m.classifier[4] = nn.Linear(32, 24)
    m.classifier[6] = nn.Linear(24, 10)
    return m


def full_alexnet():
    m = torchvision.models.alexnet(num_classes=1000, dropout=0.0)
    m.classifier[4] = torch.nn.Linear(4096, 1024)
    m.classifier[6] = torch.nn.Linear(1024, 10)
    return m


def narrow_resnet(block, layers):
    from torchvision.models.resnet import ResNet
    nn = torch.nn
    width = 4
    m = ResNet(block, layers, num_classes=10)
    m.inplanes = width
    m.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    m.layer1 = m._make_layer(block, width, layers[0])
    m.layer2 = m._make_layer(block, 2 * width, layers[1], stride=2)
    m.layer3 = m._make_layer(block, 4 * width, layers[2], stride=2)
    m.layer4 = m._make_layer(block, 8 * width, layers[3], stride=2)
    m.fc = nn.Linear(8 * width * block.expansion, 10)
    randomize_batchnorm(m)
    return m


def resnet18():
    m = torchvision.models.resnet18(num_classes=1000)
    m.fc = torch.nn.Linear(512, 10)
    randomize_batchnorm(m)
    # Keep most ReLU inputs off the kink: a BatchNorm's output is centred on
    # its bias, and with millions of them near 0 some lie within float32's
    # rounding of it and take the other side in any float32 run (PyTorch's
    # own float32 steps then miss the float64 gradients by up to 13% of
    # their largest value). Biases of 1.5 to 2.5 standard deviations, either
    # sign, make such inputs some 30 times rarer.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                sign = torch.randint(0, 2, mod.bias.shape) * 2 - 1
                mod.bias.copy_(sign * mod.weight * torch.empty_like(mod.bias).uniform_(1.5, 2.5))
    return m


def randomize_batchnorm(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 2.0)


def run_steps(model, opt, batch, resize, crop, double, smoothing=0.0):
    io = {}
    for step in range(2):
        records = torch.randint(0, 256, (batch, 3 * 32 * 32), dtype=torch.uint8)
        labels = torch.randint(0, 10, (batch,))
        x = preprocess(records, resize, crop, double=double)
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        loss.backward()
        opt.step()
        io[f"step{step}.records"] = records
        io[f"step{step}.labels"] = labels
        io[f"step{step}.logits"] = logits.detach().float()
        io[f"step{step}.loss"] = loss.detach().reshape(1).float()
    for k, p in model.named_parameters():
        io["grad." + k] = p.grad.detach().float().clone()
    for k, v in model.state_dict().items():
        io["after." + k] = v.detach().float().clone()
    return io


def resnet_fixtures(full):
    from torchvision.models.resnet import BasicBlock, Bottleneck
    if full:
        out = os.environ.get("PARITY_DIR", "/tmp/vktrain-parity")
        cases = [("parity_resnet18", resnet18, True)]
        batch, resize, crop = 2, 256, 224
    else:
        out = os.path.dirname(os.path.abspath(__file__))
        cases = [("parity_resnet", lambda: narrow_resnet(BasicBlock, [2, 1, 1, 1]), True),
                 ("parity_bottleneck", lambda: narrow_resnet(Bottleneck, [1, 1, 1, 1]), False)]
        batch, resize, crop = 4, 64, 64
    os.makedirs(out, exist_ok=True)
    for name, make, with_adamw in cases:
        torch.manual_seed(20261202)
        model = make()
        torch.save(model.state_dict(), os.path.join(out, name + "_weights.pth"))
        variants = [("_io.pth", "sgd", True), ("_eval_io.pth", "sgd", False)]
        if with_adamw:
            variants.append(("_adamw_io.pth", "adamw", True))
        for suffix, optim, train_mode in variants:
            torch.manual_seed(7)  # the same records and labels for every variant
            m = make()
            m.load_state_dict(torch.load(os.path.join(out, name + "_weights.pth")))
            m = m.double()
            # At full size AdamW's eps is 1e-3 (1e-8 by default): Adam's first
            # step is lr * sign(g) wherever |g| >> eps, so a gradient below
            # float32's error of the exact one (ResNet-18 has thousands) would
            # step by the other sign, and the second step's gradients would
            # miss by percents in any float32 run; the narrow ResNet keeps
            # the default.
            adam_eps = 1e-3 if full else 1e-8
            if optim == "adamw":
                opt = torch.optim.AdamW(m.parameters(), lr=0.001, weight_decay=0.01, eps=adam_eps)
            else:
                opt = torch.optim.SGD(m.parameters(), lr=0.001, momentum=0.9)
            m.train(train_mode)
            io = run_steps(m, opt, batch, resize, crop, double=True)
            if full:
                # The same steps in PyTorch's float32, as a yardstick: ReLU
                # inputs within float32's rounding of 0 (plentiful after
                # BatchNorm at this size) take the other side of the kink
                # in any float32 run, so no float32 result is within 1e-4 of
                # the exact one everywhere; the test holds vktrain to a
                # multiple of PyTorch's own float32 error where 1e-4 fails.
                torch.manual_seed(7)
                m32 = make()
                m32.load_state_dict(torch.load(os.path.join(out, name + "_weights.pth")))
                opt32 = (torch.optim.AdamW(m32.parameters(), lr=0.001, weight_decay=0.01, eps=adam_eps) if optim == "adamw"
                         else torch.optim.SGD(m32.parameters(), lr=0.001, momentum=0.9))
                m32.train(train_mode)
                io32 = run_steps(m32, opt32, batch, resize, crop, double=False)
                for k, v in io32.items():
                    if not k.endswith((".records", ".labels")) :
                        io["f32." + k] = v
            torch.save(io, os.path.join(out, name + suffix))
            print("wrote", os.path.join(out, name + suffix), "with torch", torch.__version__)


def preprocess(records, resize, crop, double=False):
    x = records.to(torch.float64).view(-1, 3, 32, 32)
    x = F.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False)
    off = int(round((resize - crop) / 2.0))
    x = x[:, :, off:off + crop, off:off + crop] / 255.0
    x = (x - MEAN.double()) / STD.double()
    return x if double else x.float()


def main():
    if "--resnet" in sys.argv or "--resnet18" in sys.argv:
        resnet_fixtures("--resnet18" in sys.argv)
        return
    full = "--full" in sys.argv
    adamw = "--adamw" in sys.argv
    groups = "--groups" in sys.argv
    smoothing = 0.1 if "--label-smoothing" in sys.argv else 0.0
    torch.manual_seed(20261125)
    if full:
        model, resize, crop, name = full_alexnet(), 256, 224, "parity_full"
        out = os.environ.get("PARITY_DIR", "/tmp/vktrain-parity")
    else:
        model, resize, crop, name = narrow_alexnet(), 64, 64, "parity_small"
        out = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    batch = 4
    if not adamw and not groups and not smoothing:
        torch.save(model.state_dict(), os.path.join(out, name + "_weights.pth"))
    if full:
        # The two steps in float64 from the float32 weights and float64 inputs:
        # the reference is then exact to float32's eyes, and the test measures
        # vktrain's rounding alone, not also oneDNN's, whose convolution
        # algorithms (and so their float32 rounding) differ from CPU to CPU
        # (the same vktrain build passed against an Intel host's float32 torch
        # and missed an AMD host's by up to 1.15x the bounds).
        model = model.double()
    if adamw:
        opt = torch.optim.AdamW(model.parameters(), lr=0.001, weight_decay=0.01)
    elif groups:
        named = list(model.named_parameters())
        opt = torch.optim.SGD([
            {"params": [p for k, p in named if k.startswith("features.")], "lr": 0.0002},
            {"params": [p for k, p in named if not k.startswith("features.")]}], lr=0.001, momentum=0.9)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    model.train()
    io = run_steps(model, opt, batch, resize, crop, double=full, smoothing=smoothing)
    io_name = name + ("_adamw_io.pth" if adamw else "_groups_io.pth" if groups else
                      "_smooth_io.pth" if smoothing else "_io.pth")
    torch.save(io, os.path.join(out, io_name))
    print("wrote", os.path.join(out, io_name), "(weights", name + "_weights.pth) with torch", torch.__version__)


if __name__ == "__main__":
    main()
