#!/usr/bin/python3
"""Generate the committed test fixtures for vktrain/train/weights.

Run from anywhere with Debian's python3-torch (fixtures were made with torch 1.13):

    /usr/bin/python3 train/weights/testdata/gen_fixtures.py

Outputs (next to this script):
  tiny_alexnet_zip.pth     torch.save, zip format (default since torch 1.6)
  tiny_alexnet_legacy.pth  torch.save(..., _use_new_zipfile_serialization=False)
  tiny_alexnet.json        the expected values: {name: {"dtype", "shape", "data"}} in file order
  nested_zip.pth           {"epoch": 3, "state_dict": <small state dict>}
  evil_zip.pth             a state dict whose pickle calls os.system (zip format)
  evil_legacy.pth          the same in the legacy format
  evil_bare.pkl            a bare pickle calling os.system (no torch framing at all)
  bad_extent_zip.pth       a tensor whose offset+shape run past the end of its storage
  python.safetensors       a safetensors file built with struct+json (F32, F64, F16, BF16, header padding)

The zip files and the JSON are byte-for-byte reproducible; the legacy files are not (their
storage keys are memory addresses), but their contents are.

The os.system payload would create EVIL_MARKER; the Go tests check that it never appears.
Nothing here runs the payload: pickling only records the reference to os.system.
"""
import collections
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
EVIL_MARKER = "/tmp/vktrain-weights-evil-marker"

torch.manual_seed(1234)


def rnd(*shape, dtype=torch.float32):
    # Values rounded to multiples of 1/64 so that float16/bfloat16 hold them exactly enough
    # and JSON round-trips them without loss.
    return (torch.randint(-128, 128, shape).to(torch.float64) / 64).to(dtype)


def tiny_alexnet():
    sd = collections.OrderedDict()
    sd["features.0.weight"] = rnd(4, 3, 3, 3)
    # A Parameter pickles through torch._utils._rebuild_parameter.
    sd["features.0.bias"] = torch.nn.Parameter(rnd(4))
    sd["features.3.weight"] = rnd(6, 4, 3, 3)
    sd["features.3.bias"] = rnd(6, dtype=torch.float64)
    sd["features.6.weight"] = rnd(8, 6, 3, 3)
    sd["features.6.bias"] = rnd(8, dtype=torch.float16)
    sd["features.8.weight"] = rnd(8, 8, 3, 3)
    sd["features.8.bias"] = rnd(8, dtype=torch.bfloat16)
    sd["features.10.weight"] = rnd(6, 8, 3, 3)
    sd["features.10.bias"] = rnd(6)
    # Two tensors slicing one storage: a strided, offset view and a row piece of it.
    shared = rnd(16, 40)
    sd["classifier.1.weight"] = shared[:, 4:28]         # 16x24, offset 4, strides (40, 1)
    sd["classifier.1.bias"] = shared[3, 24:40]          # 16, offset 3*40+24
    sd["classifier.4.weight"] = rnd(16, 16).t()         # transposed: strides (1, 16)
    sd["classifier.4.bias"] = rnd(32)[::2]              # stride 2
    sd["classifier.6.weight"] = rnd(10, 16)
    sd["classifier.6.bias"] = rnd(10)
    # An integer scalar buffer, like BatchNorm's num_batches_tracked.
    sd["extra.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    return sd


def expected_json(sd):
    out = collections.OrderedDict()
    for k, v in sd.items():
        out[k] = {
            "dtype": str(v.dtype).replace("torch.", ""),
            "shape": list(v.shape),
            "data": [float(x) for x in v.detach().to(torch.float64).reshape(-1).tolist()],
        }
    return out


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > " + EVIL_MARKER,))


class BadExtent:
    """Pickles as _rebuild_tensor_v2 over a 10-element storage, asking for 4 elements at offset 8."""

    def __init__(self):
        self.storage = torch.arange(10, dtype=torch.float32).storage()

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, 8, (4,), (1,), False, collections.OrderedDict()))


def f16_bytes(vals):
    return struct.pack("<%de" % len(vals), *vals)


def bf16_bytes(vals):
    return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in vals)


def write_safetensors(path):
    tensors = [
        ("b.f64", "F64", [2, 2], struct.pack("<4d", 1.5, -2.25, 3.0, 1e-3)),
        ("a.f32", "F32", [3], struct.pack("<3f", 0.5, -1.0, 42.0)),
        ("c.f16", "F16", [2], f16_bytes([0.5, -65504.0])),
        ("d.bf16", "BF16", [2, 1], bf16_bytes([1.0, -3.5])),
        ("e.empty", "F32", [0, 4], b""),
    ]
    header = {"__metadata__": {"format": "pt", "source": "gen_fixtures.py"}}
    blob = b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + blob)


def main():
    sd = tiny_alexnet()
    torch.save(sd, os.path.join(HERE, "tiny_alexnet_zip.pth"))
    torch.save(sd, os.path.join(HERE, "tiny_alexnet_legacy.pth"), _use_new_zipfile_serialization=False)
    with open(os.path.join(HERE, "tiny_alexnet.json"), "w") as f:
        json.dump(expected_json(sd), f, indent=1)
        f.write("\n")

    small = collections.OrderedDict([("w", rnd(2, 3)), ("b", rnd(2))])
    torch.save({"epoch": 3, "state_dict": small}, os.path.join(HERE, "nested_zip.pth"))

    evil = collections.OrderedDict([("features.0.weight", rnd(2)), ("x", Evil())])
    torch.save(evil, os.path.join(HERE, "evil_zip.pth"))
    torch.save(evil, os.path.join(HERE, "evil_legacy.pth"), _use_new_zipfile_serialization=False)
    import pickle
    with open(os.path.join(HERE, "evil_bare.pkl"), "wb") as f:
        pickle.dump(Evil(), f, protocol=2)

    torch.save({"t": BadExtent()}, os.path.join(HERE, "bad_extent_zip.pth"))

    write_safetensors(os.path.join(HERE, "python.safetensors"))

    # Sanity: torch itself reads the good files back identically.
    for name in ("tiny_alexnet_zip.pth", "tiny_alexnet_legacy.pth"):
        back = torch.load(os.path.join(HERE, name))
        assert list(back) == list(sd)
        for k in sd:
            assert torch.equal(back[k], sd[k]), (name, k)


if __name__ == "__main__":
    main()
