#!/usr/bin/python3
"""insitu against real torchvision (developer script, not part of CI; needs Debian's python3-torch
and python3-torchvision 0.14): resnet18, mobilenet_v2, mobilenet_v3_small, efficientnet_b0 and
densenet121 (10 classes, eval mode) compared by their logits, both ways.

  torchvision -> insitu: each model's state_dict (random weights, randomized BatchNorm statistics)
  is saved as safetensors, `insitu eval --model ARCH` loads it as a dense model and writes its
  logits on random CIFAR-10-format images; torchvision runs the same normalized images.
  insitu -> torchvision: `insitu init --init svd` projects that checkpoint onto generated convs
  (--setting, default 2-16-8-8-8), `insitu eval` writes the student's logits, and
  `insitu export --materialize` gives a torchvision state_dict that torchvision runs.

  --fixture FILE: also writes the small file tests/test_torchvision_fixture.cc checks without
  torch: each model's logits on two 32x32 inputs, with weights and inputs that the test rebuilds
  from a hash (fixture_weights below; the C++ test has the same formula), so no weights are
  committed, only 2 x 10 logits per model.

Run from the repository root after building:  models/torchvision_check.py [--insitu build/insitu]
Prints the largest logit difference of each check; exits non-zero if one exceeds --tol."""
import argparse
import os
import sys
import tempfile

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_interop import compare, insitu, load_safetensors, randomize_bn, save_safetensors, state_dict_arrays  # noqa: E402

MODELS = [("resnet18", "resnet18"), ("mobilenet_v2", "mobilenetv2"), ("mobilenet_v3_small", "mobilenetv3-small"),
          ("efficientnet_b0", "efficientnet-b0"), ("densenet121", "densenet121")]
CLASSES = 10
FIXTURE_IMAGES = 2
FIXTURE_SIZE = 32


def fixture_uniform(name, n):
    """u in [0, 1) for elements 0..n-1 of tensor `name`: splitmix64 of FNV-1a(name) + golden·(i+1),
    top 24 bits (tests/test_torchvision_fixture.cc computes the same)."""
    h = np.uint64(0xCBF29CE484222325)
    with np.errstate(over="ignore"):
        for c in name.encode():
            h = (h ^ np.uint64(c)) * np.uint64(0x100000001B3)
        z = h + np.uint64(0x9E3779B97F4A7C15) * (np.arange(n, dtype=np.uint64) + np.uint64(1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def fixture_tensor(name, shape):
    """The fixture's value of a parameter or buffer, by its name and shape: BatchNorm statistics
    and affine terms near their usual values, weights uniform with variance 1/fan-in."""
    n = int(np.prod(shape))
    u = fixture_uniform(name, n)
    f32 = np.float32
    if name.endswith("running_var"):
        v = f32(0.5) + u
    elif name.endswith("running_mean"):
        v = f32(0.2) * (u - f32(0.5))
    elif len(shape) == 1 and name.endswith(".weight"):
        v = f32(1.0) + f32(0.2) * (u - f32(0.5))
    elif len(shape) == 1:
        v = f32(0.2) * (u - f32(0.5))
    else:
        v = (f32(2.0) * u - f32(1.0)) * np.sqrt(f32(3.0) / f32(n // shape[0]), dtype=f32)
    return v.astype(np.float32).reshape(shape)


def fixture_weights(model):
    sd = {}
    for k, v in model.state_dict().items():
        sd[k] = v if k.endswith("num_batches_tracked") else torch.from_numpy(fixture_tensor(k, tuple(v.shape)))
    model.load_state_dict(sd)


def fixture_logits(net):
    """The logits of `net` with the fixture's weights on the fixture's inputs (hash-built, x4)."""
    fixture_weights(net)
    xs = np.stack([fixture_tensor(f"input{i}", (3, FIXTURE_SIZE, FIXTURE_SIZE)) * np.float32(4.0)
                   for i in range(FIXTURE_IMAGES)])
    with torch.no_grad():
        return net(torch.from_numpy(xs)).numpy()


def check(name, ours_path, theirs, tol, failures):
    compare(name, ours_path, theirs, tol, failures)
    print(f"{'':58s} (largest |logit| {theirs.abs().max().item():.3g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--insitu", default="build/insitu")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--setting", default="2-16-8-8-8")
    ap.add_argument("--models", default=",".join(a for a, _ in MODELS))
    ap.add_argument("--fixture", help="write the test fixture (logits of the hash-built models) here")
    ap.add_argument("--fixture-only", action="store_true", help="only write --fixture (no insitu runs)")
    args = ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    work = tempfile.mkdtemp(prefix="insitu_tv_")
    failures = []
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")

    os.makedirs(f"{work}/cifar", exist_ok=True)
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (args.images, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, args.images, dtype=np.uint8)
    with open(f"{work}/cifar/test_batch.bin", "wb") as f:
        for i in range(args.images):
            f.write(bytes([labels[i]]) + pixels[i].tobytes())
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    x = (torch.from_numpy(pixels).float() / 255 - mean) / std
    data = ["--dataset", "cifar10", "--data", f"{work}/cifar", "--classes", str(CLASSES), "--input-size", "32",
            "--bn-recalib", "0"]
    fixture = {}
    for tv_name, arch in MODELS:
        if tv_name not in args.models.split(","):
            continue
        net = getattr(torchvision.models, tv_name)(num_classes=CLASSES).eval()
        randomize_bn(net, gen)
        if args.fixture_only:
            fixture[arch] = fixture_logits(net)
            continue
        ckpt = f"{work}/{tv_name}.safetensors"
        save_safetensors(ckpt, state_dict_arrays(net))
        insitu(args.insitu, "eval", "--checkpoint", ckpt, "--model", arch, *data, "--logits", f"{work}/{arch}.l.safetensors")
        with torch.no_grad():
            check(f"torchvision {tv_name} -> insitu eval --model {arch}", f"{work}/{arch}.l.safetensors", net(x),
                    args.tol, failures)
        # Reverse: a generated student projected from it, exported as torchvision weights.
        student = f"{work}/{arch}.student.safetensors"
        insitu(args.insitu, "init", "--model", arch, "--teacher", ckpt, "--init", "svd", "--setting", args.setting,
               "--classes", str(CLASSES), "--input-size", "32", "--student", student, *data[:4])
        insitu(args.insitu, "eval", "--checkpoint", student, *data, "--logits", f"{work}/{arch}.s.safetensors")
        insitu(args.insitu, "export", "--checkpoint", student, "--materialize", "--to", f"{work}/{arch}.export.safetensors")
        dense, meta = load_safetensors(f"{work}/{arch}.export.safetensors")
        back = getattr(torchvision.models, tv_name)(num_classes=CLASSES).eval()
        missing, unexpected = back.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in dense.items()}, strict=False)
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
        with torch.no_grad():
            check(f"insitu {arch} {args.setting} (svd init) -> export -> torchvision", f"{work}/{arch}.s.safetensors",
                    back(x), args.tol, failures)
        if args.fixture:
            fixture[arch] = fixture_logits(net)
    if args.fixture:
        save_safetensors(args.fixture, fixture, {"torchvision": torchvision.__version__, "torch": torch.__version__,
                                                 "images": str(FIXTURE_IMAGES), "size": str(FIXTURE_SIZE)})
        print(f"fixture: {args.fixture} ({os.path.getsize(args.fixture)} bytes)")
    print(f"files in {work}")
    if failures:
        sys.exit(f"FAILED: {', '.join(failures)}")


if __name__ == "__main__":
    main()
