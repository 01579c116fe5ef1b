#!/usr/bin/python3
"""Generate the PyTorch golden fixtures for package vktrain/layers/ref.

Run with Debian's interpreter, which has python3-torch (1.13) and
python3-torchvision (0.14):

    /usr/bin/python3 layers/ref/testdata/gen_fixtures.py [FILE.json ...]

(naming files writes only those; the batch-norm and smoothed cross-entropy
fixtures have their own seeds.)

It writes one JSON file per operator family next to this script. Each file
is {"torch": version, "cases": [case, ...]} and each case is
{"name": str, "params": {str: number}, "tensors": {str: {"shape": [...],
"data": [...]}}}, data flattened row-major (NCHW). Inputs are dyadic
rationals (k/32) so their decimal form is short and exact; computed outputs
are rounded to 15 significant digits, far below the 1e-10 test tolerance.
Everything is computed in float64 and is deterministic (fixed seeds).
"""

import json
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms.functional as TF

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_default_dtype(torch.float64)


def dyadic(gen, *shape, scale=2.0):
    """Random values k/32 in [-scale, scale], exactly representable."""
    n = int(scale * 32)
    return torch.randint(-n, n + 1, shape, generator=gen).to(torch.float64) / 32


def tensor(t, exact=False):
    """Encode a tensor; outputs are rounded to 15 significant digits."""
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32, torch.uint8):
        data = [int(v) for v in t.flatten().tolist()]
    elif exact:
        data = [float(v) for v in t.flatten().tolist()]
    else:
        data = [float("%.15g" % v) for v in t.flatten().tolist()]
    return {"shape": list(t.shape), "data": data}


def write(name, cases):
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print("%-28s %7d bytes" % (name, os.path.getsize(path)))


def conv_case(gen, name, n, c, h, w, k, r, s, stride, pad):
    x = dyadic(gen, n, c, h, w).requires_grad_()
    wt = dyadic(gen, k, c, r, s, scale=0.5).requires_grad_()
    b = dyadic(gen, k).requires_grad_()
    y = F.conv2d(x, wt, b, stride=stride, padding=pad)
    dy = dyadic(gen, *y.shape)
    y.backward(dy)
    return {
        "name": name,
        "params": {"N": n, "C": c, "H": h, "W": w, "K": k, "R": r, "S": s,
                   "StrideH": stride[0], "StrideW": stride[1], "PadH": pad[0], "PadW": pad[1]},
        "tensors": {"x": tensor(x, True), "w": tensor(wt, True), "b": tensor(b, True),
                    "dy": tensor(dy, True), "y": tensor(y), "dx": tensor(x.grad),
                    "dw": tensor(wt.grad), "db": tensor(b.grad)},
    }


def maxpool_case(gen, name, x, k, stride, pad):
    x = x.clone().requires_grad_()
    y, idx = F.max_pool2d(x, k, stride, pad, return_indices=True)
    dy = dyadic(gen, *y.shape)
    y.backward(dy)
    n, c, h, w = x.shape
    return {
        "name": name,
        "params": {"N": n, "C": c, "H": h, "W": w, "KH": k[0], "KW": k[1],
                   "StrideH": stride[0], "StrideW": stride[1], "PadH": pad[0], "PadW": pad[1]},
        "tensors": {"x": tensor(x, True), "dy": tensor(dy, True), "y": tensor(y, True),
                    "argmax": tensor(idx), "dx": tensor(x.grad, True)},
    }


def adaptive_case(gen, name, n, c, h, w, oh, ow):
    x = dyadic(gen, n, c, h, w).requires_grad_()
    y = F.adaptive_avg_pool2d(x, (oh, ow))
    dy = dyadic(gen, *y.shape)
    y.backward(dy)
    return {
        "name": name,
        "params": {"N": n, "C": c, "H": h, "W": w, "OH": oh, "OW": ow},
        "tensors": {"x": tensor(x, True), "dy": tensor(dy, True), "y": tensor(y), "dx": tensor(x.grad)},
    }


def linear_case(gen, name, batch, nin, nout):
    x = dyadic(gen, batch, nin).requires_grad_()
    w = dyadic(gen, nout, nin).requires_grad_()
    b = dyadic(gen, nout).requires_grad_()
    y = F.linear(x, w, b)
    dy = dyadic(gen, batch, nout)
    y.backward(dy)
    return {
        "name": name,
        "params": {"Batch": batch, "In": nin, "Out": nout},
        "tensors": {"x": tensor(x, True), "w": tensor(w, True), "b": tensor(b, True),
                    "dy": tensor(dy, True), "y": tensor(y), "dx": tensor(x.grad),
                    "dw": tensor(w.grad), "db": tensor(b.grad)},
    }


def ce_case(name, logits, labels, smoothing=0.0):
    logits = logits.clone().requires_grad_()
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    loss.backward()
    pred = logits.detach().argmax(dim=1)
    params = {"Batch": logits.shape[0], "Classes": logits.shape[1],
              "Loss": float("%.15g" % loss.item()), "Correct": int((pred == labels).sum())}
    if smoothing:
        params["LabelSmoothing"] = smoothing
    return {
        "name": name,
        "params": params,
        "tensors": {"logits": tensor(logits, True), "labels": tensor(labels),
                    "dlogits": tensor(logits.grad), "predicted": tensor(pred)},
    }


def sgd_case(gen, name, steps, lr, momentum, dampening, weight_decay, nesterov):
    p = torch.nn.Parameter(dyadic(gen, 9))
    opt = torch.optim.SGD([p], lr=lr, momentum=momentum, dampening=dampening,
                          weight_decay=weight_decay, nesterov=nesterov)
    init = p.detach().clone()
    grads, params, bufs = [], [], []
    for _ in range(steps):
        g = dyadic(gen, 9)
        p.grad = g.clone()
        opt.step()
        grads.append(g)
        params.append(p.detach().clone())
        buf = opt.state[p].get("momentum_buffer")
        bufs.append(torch.zeros(9) if buf is None else buf.clone())
    return {
        "name": name,
        "params": {"LR": lr, "Momentum": momentum, "Dampening": dampening,
                   "WeightDecay": weight_decay, "Nesterov": int(nesterov), "Steps": steps},
        "tensors": {"param0": tensor(init, True), "grads": tensor(torch.stack(grads), True),
                    "params": tensor(torch.stack(params)), "bufs": tensor(torch.stack(bufs))},
    }


MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def preprocess_case(records, name, resize, crop):
    """Bilinear resize (as float64 byte values), center crop, /255, normalize."""
    n, _, h, w = records.shape
    x = F.interpolate(records.to(torch.float64), size=(resize, resize), mode="bilinear",
                      align_corners=False, antialias=False)
    x = TF.center_crop(x, [crop, crop]) / 255
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return {
        "name": name,
        "params": {"N": n, "SrcH": h, "SrcW": w, "Resize": resize, "Crop": crop,
                   "Mean0": MEAN[0], "Mean1": MEAN[1], "Mean2": MEAN[2],
                   "Std0": STD[0], "Std1": STD[1], "Std2": STD[2]},
        "tensors": {"records": tensor(records), "out": tensor(x)},
    }


def crop_offsets():
    """torchvision's center_crop offset for each (size, crop) pair."""
    rows = []
    for size in range(1, 20):
        for crop in range(1, size + 1):
            plane = torch.arange(size * size).view(1, size, size)
            corner = int(TF.center_crop(plane, [crop, crop])[0, 0, 0])
            rows.append([size, crop, corner // size])
    return {"name": "center_crop_offsets", "params": {},
            "tensors": {"size_crop_offset": tensor(torch.tensor(rows))}}


def batchnorm_case(gen, name, n, c, h, w, momentum, eps, train):
    """torch.nn.BatchNorm2d, one forward and backward, in training or eval mode."""
    x = dyadic(gen, n, c, h, w).requires_grad_()
    bn = torch.nn.BatchNorm2d(c, eps=eps, momentum=momentum)
    with torch.no_grad():
        bn.weight.copy_(dyadic(gen, c))
        bn.bias.copy_(dyadic(gen, c))
        bn.running_mean.copy_(dyadic(gen, c, scale=0.5))
        bn.running_var.copy_(dyadic(gen, c, scale=1.0).abs() + 0.5)
    gamma0, beta0 = bn.weight.detach().clone(), bn.bias.detach().clone()
    mean0, var0 = bn.running_mean.clone(), bn.running_var.clone()
    bn.train(train)
    y = bn(x)
    dy = dyadic(gen, *y.shape)
    y.backward(dy)
    return {"name": name,
            "params": {"n": n, "c": c, "h": h, "w": w, "momentum": momentum, "eps": eps, "train": int(train)},
            "tensors": {"x": tensor(x, True), "gamma": tensor(gamma0, True), "beta": tensor(beta0, True),
                        "running_mean": tensor(mean0, True), "running_var": tensor(var0, True),
                        "dy": tensor(dy, True), "y": tensor(y),
                        "running_mean_after": tensor(bn.running_mean), "running_var_after": tensor(bn.running_var),
                        "num_batches_tracked": tensor(bn.num_batches_tracked),
                        "dx": tensor(x.grad), "dgamma": tensor(bn.weight.grad), "dbeta": tensor(bn.bias.grad)}}


def batchnorm_cases():
    gen = torch.Generator().manual_seed(20261201)
    return [batchnorm_case(gen, "train_2x3x5x7", 2, 3, 5, 7, 0.1, 1e-5, True),
            batchnorm_case(gen, "train_1x4x3x3_momentum0.3", 1, 4, 3, 3, 0.3, 1e-3, True),
            batchnorm_case(gen, "eval_3x2x4x5", 3, 2, 4, 5, 0.1, 1e-5, False)]


def ce_smoothed_cases():
    """nn.CrossEntropyLoss(label_smoothing=eps), mean reduction: odd shapes."""
    gen = torch.Generator().manual_seed(20261202)
    big = torch.tensor([[1000.0, -1000.0, 999.5, 0.0, 3.0],
                        [30.0, 30.0, -30.0, 1e4, 0.0],
                        [2.5, 2.5, 2.5, 2.5, 2.5]])
    return [
        ce_case("eps0.1_3x7", dyadic(gen, 3, 7, scale=4.0), torch.randint(0, 7, (3,), generator=gen), 0.1),
        ce_case("eps0.25_1x5", dyadic(gen, 1, 5, scale=4.0), torch.randint(0, 5, (1,), generator=gen), 0.25),
        ce_case("eps0.05_7x11", dyadic(gen, 7, 11, scale=4.0), torch.randint(0, 11, (7,), generator=gen), 0.05),
        ce_case("eps1_2x3", dyadic(gen, 2, 3, scale=4.0), torch.randint(0, 3, (2,), generator=gen), 1.0),
        ce_case("eps0.1_large_logits_ties", big, torch.tensor([2, 1, 4]), 0.1)]


def main():
    only = sys.argv[1:]  # file names to write; none: every file
    if only:
        makers = {"batchnorm2d.json": batchnorm_cases, "cross_entropy_smoothed.json": ce_smoothed_cases}
        for name in only:
            write(name, makers[name]())
        return
    gen = torch.Generator().manual_seed(20240611)
    write("conv2d_conv1.json", [
        conv_case(gen, "alexnet_conv1_11x11_s4_p2", 2, 3, 33, 33, 4, 11, 11, (4, 4), (2, 2))])
    write("conv2d_small.json", [
        conv_case(gen, "alexnet_conv2_5x5_s1_p2", 2, 5, 9, 9, 6, 5, 5, (1, 1), (2, 2)),
        conv_case(gen, "conv3x3_p1_odd", 1, 4, 7, 5, 3, 3, 3, (1, 1), (1, 1)),
        conv_case(gen, "conv3x5_s2x3_p1x2", 3, 2, 8, 11, 5, 3, 5, (2, 3), (1, 2))])
    write("maxpool2d.json", [
        maxpool_case(gen, "alexnet_3_2_13x13", dyadic(gen, 2, 3, 13, 13), (3, 3), (2, 2), (0, 0)),
        maxpool_case(gen, "alexnet_3_2_27x27_ties", torch.randint(0, 4, (1, 2, 27, 27), generator=gen)
                     .to(torch.float64), (3, 3), (2, 2), (0, 0)),
        maxpool_case(gen, "k3_s2_p1_7x5_ties", torch.randint(-2, 2, (2, 3, 7, 5), generator=gen)
                     .to(torch.float64), (3, 3), (2, 2), (1, 1)),
        maxpool_case(gen, "k2x3_s1x2_p1_negative", dyadic(gen, 1, 2, 6, 7) - 3, (2, 3), (1, 2), (1, 1))])
    write("adaptive_avgpool2d.json", [
        adaptive_case(gen, "1x1_to_6x6", 2, 3, 1, 1, 6, 6),
        adaptive_case(gen, "13x13_to_6x6", 2, 3, 13, 13, 6, 6),
        adaptive_case(gen, "5x7_to_6x6", 1, 2, 5, 7, 6, 6)])
    write("linear.json", [linear_case(gen, "linear_3x7_to_5", 3, 7, 5),
                          linear_case(gen, "linear_1x13_to_4", 1, 13, 4)])
    big = torch.tensor([[1000.0, -1000.0, 999.5, 0.0],
                        [-5000.0, -5001.0, -4999.25, -6000.0],
                        [30.0, 30.0, -30.0, 1e4],
                        [2.5, 2.5, 2.5, 2.5]])
    write("cross_entropy.json", [
        ce_case("random_4x10", dyadic(gen, 4, 10, scale=4.0), torch.randint(0, 10, (4,), generator=gen)),
        ce_case("large_logits_ties", big, torch.tensor([2, 1, 0, 3]))])
    write("sgd.json", [
        sgd_case(gen, "momentum_0.9", 3, 0.01, 0.9, 0.0, 0.0, False),
        sgd_case(gen, "nesterov_wd", 3, 0.01, 0.9, 0.0, 5e-4, True),
        sgd_case(gen, "dampening_wd", 3, 0.1, 0.5, 0.3, 0.01, False),
        sgd_case(gen, "plain_wd", 3, 0.05, 0.0, 0.0, 0.1, False)])
    records = torch.randint(0, 256, (2, 3, 32, 32), generator=gen, dtype=torch.uint8)
    write("preprocess_resize.json", [preprocess_case(records, "cifar_32_to_40_full", 40, 40), crop_offsets()])
    write("preprocess_crop.json", [preprocess_case(records[1:], "cifar_32_to_40_crop37", 40, 37),
                                   preprocess_case(torch.randint(0, 256, (1, 3, 5, 7), generator=gen,
                                                                 dtype=torch.uint8), "5x7_to_9_crop6", 9, 6)])
    write("batchnorm2d.json", batchnorm_cases())
    write("cross_entropy_smoothed.json", ce_smoothed_cases())


if __name__ == "__main__":
    main()
