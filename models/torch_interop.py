#!/usr/bin/python3
"""Weights between PyTorch and insitu, both ways, checked by comparing logits (developer script,
not part of CI; needs PyTorch and NumPy, e.g. Debian's python3-torch; torchvision is used when
installed, else an equivalent ResNet-18 with torchvision's parameter names).

  PyTorch -> insitu: a PyTorch cnn3 and a torchvision ResNet-18 are saved as plain safetensors
  state_dicts (our names are torchvision's; num_batches_tracked included) and `insitu eval`
  loads them as dense models (--model says which) and writes its logits.
  insitu -> PyTorch: a generated, quantized cnn3 student trained by insitu is exported with
  `insitu export`, as dense weights (--materialize, loaded into the plain PyTorch cnn3) and as
  factors (loaded into a PyTorch cnn3 that builds W = V·{U_j·Wb_j} itself), and run by PyTorch.

Run from the repository root after building:  models/torch_interop.py [--insitu build/insitu]
Prints the largest logit difference of each check and exits non-zero if one exceeds --tol."""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "U8": np.uint8}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def save_safetensors(path, tensors, meta=None):
    """Writes {name: array} (safetensors: 8-byte header length, JSON header, raw little-endian data)."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], DTYPES[v["dtype"]])
           .reshape(v["shape"]) for k, v in header.items()}
    return out, meta


def state_dict_arrays(model):
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


class Cnn3(nn.Module):
    """insitu's cnn3 (SPEC §5) with its parameter names: conv5x5/2, conv5x5, conv5x5 (BN, ReLU each),
    adaptive average pooling to 3x3, fc."""

    def __init__(self):
        super().__init__()
        for i, ci in enumerate([1, 32, 32], 1):
            setattr(self, f"conv{i}", nn.Conv2d(ci, 32, 5, stride=2 if i == 1 else 1, padding=2, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(32))
        self.fc = nn.Linear(32 * 9, 10)

    def convs(self, i, x):
        return getattr(self, f"conv{i}")(x)

    def forward(self, x):
        for i in (1, 2, 3):
            x = F.relu(getattr(self, f"bn{i}")(self.convs(i, x)))
        return self.fc(F.adaptive_avg_pool2d(x, 3).flatten(1))


class GeneratedCnn3(Cnn3):
    """cnn3 whose convs are given as insitu's exported factors: W (co x ci*k*k) = V · Wc with
    Wc_j = U_j · Wb_j (level 1 off: Wc given; level 2 off: W = Wc)."""

    def __init__(self, factors):
        super().__init__()
        self.factors = {k: torch.from_numpy(v.copy()) for k, v in factors.items()}

    def weight(self, i):
        f, conv = self.factors, getattr(self, f"conv{i}")
        co, ci, k, _ = conv.weight.shape
        p = f"conv{i}."
        if p + "weight" in f:
            return f[p + "weight"]
        wc = torch.einsum("jcb,jbk->jck", f[p + "u"], f[p + "wb"]).reshape(f[p + "u"].shape[0], -1) \
            if p + "wb" in f else f[p + "wc"]
        w = f[p + "v"] @ wc if p + "v" in f else wc
        return w.reshape(co, ci, k, k)

    def convs(self, i, x):
        conv = getattr(self, f"conv{i}")
        return F.conv2d(x, self.weight(i), stride=conv.stride, padding=conv.padding)


def resnet18(classes):
    try:
        import torchvision
        return torchvision.models.resnet18(num_classes=classes), "torchvision"
    except ImportError:
        pass

    class Block(nn.Module):
        def __init__(self, ci, co, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(ci, co, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(co)
            self.conv2 = nn.Conv2d(co, co, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(co)
            self.downsample = None
            if stride != 1 or ci != co:
                self.downsample = nn.Sequential(nn.Conv2d(ci, co, 1, stride, bias=False), nn.BatchNorm2d(co))

        def forward(self, x):
            y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(y + (self.downsample(x) if self.downsample is not None else x))

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            widths, ci = [64, 128, 256, 512], 64
            for i, co in enumerate(widths, 1):
                setattr(self, f"layer{i}", nn.Sequential(Block(ci, co, 1 if i == 1 else 2), Block(co, co, 1)))
                ci = co
            self.fc = nn.Linear(512, classes)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
            for i in range(1, 5):
                x = getattr(self, f"layer{i}")(x)
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return ResNet18(), "a local copy of torchvision's ResNet-18 (torchvision is not installed)"


def randomize_bn(model, gen):
    """Non-trivial BatchNorm statistics and affine parameters, so that they are checked too."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            m.weight.data.copy_(1 + 0.1 * torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=gen))


def fashion_mnist(n):
    """The first n test images, normalized as insitu does, and their labels."""
    d = "/usr/share/datasets/fashion-mnist"
    with gzip.open(f"{d}/t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16)[:n * 784].reshape(n, 1, 28, 28)
    return torch.from_numpy((x / 255.0 - 0.2860) / 0.3530).float()


def insitu(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"insitu {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def compare(name, ours_path, torch_logits, tol, failures):
    ours = torch.from_numpy(load_safetensors(ours_path)[0]["logits"].copy())
    diff = (ours - torch_logits).abs().max().item()
    same = (ours.argmax(1) == torch_logits.argmax(1)).float().mean().item()
    print(f"{name:58s} max |logit difference| {diff:.2e}, same top-1 on {100 * same:.1f}% of {len(ours)} images")
    if not diff <= tol:
        failures.append(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--insitu", default="build/insitu")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    work = tempfile.mkdtemp(prefix="insitu_interop_")
    failures = []
    n = str(args.images)

    # PyTorch cnn3 -> insitu.
    net = Cnn3().eval()
    randomize_bn(net, gen)
    save_safetensors(f"{work}/torch_cnn3.safetensors", state_dict_arrays(net))
    insitu(args.insitu, "eval", "--checkpoint", f"{work}/torch_cnn3.safetensors", "--model", "cnn3", "--bn-recalib", "0",
           "--test-limit", n, "--logits", f"{work}/l1.safetensors")
    x = fashion_mnist(args.images)
    with torch.no_grad():
        compare("PyTorch cnn3 -> insitu eval", f"{work}/l1.safetensors", net(x), args.tol, failures)

    # torchvision ResNet-18 (ImageNet stem, 10 classes) -> insitu, on CIFAR-10 binary records.
    rn, origin = resnet18(10)
    rn.eval()
    randomize_bn(rn, gen)
    save_safetensors(f"{work}/torch_resnet18.safetensors", state_dict_arrays(rn))
    os.makedirs(f"{work}/cifar", exist_ok=True)
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (args.images, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images, dtype=np.uint8)
    with open(f"{work}/cifar/test_batch.bin", "wb") as f:
        for i in range(args.images):
            f.write(bytes([labels[i]]) + pixels[i].tobytes())
    insitu(args.insitu, "eval", "--checkpoint", f"{work}/torch_resnet18.safetensors", "--model", "resnet18",
           "--dataset", "cifar10", "--data", f"{work}/cifar", "--classes", "10", "--input-size", "32",
           "--bn-recalib", "0", "--logits", f"{work}/l2.safetensors")
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    with torch.no_grad():
        compare(f"PyTorch ResNet-18 ({origin.split(' (')[0]}) -> insitu eval", f"{work}/l2.safetensors",
                rn((torch.from_numpy(pixels).float() / 255 - mean) / std), args.tol, failures)

    # insitu student (2-16-4-4-4, quantized) -> PyTorch, as dense weights and as factors.
    out = f"{work}/run"
    insitu(args.insitu, "run", "--out", out, "--train-limit", "2048", "--test-limit", n, "--teacher-epochs", "1",
           "--epochs", "1", "--l2-iters", "200", "--log-every", "0")
    student = f"{out}/student.safetensors"
    insitu(args.insitu, "eval", "--checkpoint", student, "--bn-recalib", "0", "--test-limit", n,
           "--logits", f"{work}/l3.safetensors")
    insitu(args.insitu, "export", "--checkpoint", student, "--materialize", "--to", f"{work}/dense.safetensors")
    insitu(args.insitu, "export", "--checkpoint", student, "--to", f"{work}/factors.safetensors")
    dense, meta = load_safetensors(f"{work}/dense.safetensors")
    plain = Cnn3().eval()
    missing, unexpected = plain.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in dense.items()}, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    factors, _ = load_safetensors(f"{work}/factors.safetensors")
    gen_net = GeneratedCnn3({k: v for k, v in factors.items() if k.startswith("conv")}).eval()
    rest = {k: torch.from_numpy(v.copy()) for k, v in factors.items() if not k.startswith("conv")}
    missing, unexpected = gen_net.load_state_dict(rest, strict=False)
    assert not unexpected, unexpected
    with torch.no_grad():
        compare(f"insitu {meta.get('layers', '?')} -> PyTorch, dense W", f"{work}/l3.safetensors", plain(x), args.tol,
                failures)
        compare(f"insitu {meta.get('layers', '?')} -> PyTorch, factors", f"{work}/l3.safetensors", gen_net(x), args.tol,
                failures)
    print(f"files in {work}")
    if failures:
        sys.exit(f"FAILED: {', '.join(failures)}")


if __name__ == "__main__":
    main()
