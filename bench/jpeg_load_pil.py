"""The PIL peer of bench_jpeg_load: the same pipeline as insitu's JPEG data sets, written the way a
torchvision user gets it (PIL decode, RandomResizedCrop or Resize + CenterCrop or padded RandomCrop,
horizontal flip, ToTensor + Normalize), with NumPy for the float work and a pool of worker
processes that each build whole batches (what a DataLoader with num_workers does). Needs only
python3-pil and python3-numpy. Prints 'RESULT images_per_second'."""
import argparse
import math
import multiprocessing as mp
import os
import random
import time

import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
ARGS = None


def rrc_box(w, h, min_scale, rnd):
    """torchvision's RandomResizedCrop.get_params."""
    for _ in range(10):
        area = w * h * rnd.uniform(min_scale, 1.0)
        ratio = math.exp(rnd.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = rnd.randint(0, w - cw), rnd.randint(0, h - ch)
            return (x, y, x + cw, y + ch)
    return (0, 0, w, h)


def load(path, rnd):
    a, size = ARGS, ARGS.size
    img = Image.open(path).convert("RGB")
    if a.mode == "train" and a.rrc > 0:
        img = img.resize((size, size), Image.BILINEAR, box=rrc_box(img.width, img.height, a.rrc, rnd))
    else:
        s = size if a.mode == "train" else round(size * a.eval_resize)
        w, h = img.size
        if (w, h) != (s, s) and min(w, h) != s:
            img = img.resize((s, round(h * s / w)) if w < h else (round(w * s / h), s), Image.BILINEAR)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
    x = (x - MEAN) / STD
    if a.mode == "train":
        if a.crop_pad > 0:
            p = a.crop_pad
            pad = np.pad(x, ((0, 0), (p, p), (p, p)), constant_values=0.0)
            dy, dx = rnd.randint(0, 2 * p), rnd.randint(0, 2 * p)
            x = pad[:, dy:dy + size, dx:dx + size]
        if rnd.random() < 0.5:
            x = x[:, :, ::-1]
    return np.ascontiguousarray(x)


def make_batch(job):
    seed, paths = job
    rnd = random.Random(seed)
    return np.stack([load(p, rnd) for p in paths])


def init(args):
    global ARGS
    ARGS = args


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="an ImageFolder root (DATA/train/<class>/*.jpg)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--mode", choices=["train", "eval"], default="train")
    ap.add_argument("--rrc", type=float, default=0.08)
    ap.add_argument("--crop-pad", type=int, default=0)
    ap.add_argument("--eval-resize", type=float, default=256 / 224)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    root = os.path.join(args.data, "train")
    paths = [os.path.join(root, c, f) for c in sorted(os.listdir(root)) for f in sorted(os.listdir(os.path.join(root, c)))]
    rnd = random.Random(3)
    n = len(paths) // args.batch * args.batch
    with mp.Pool(args.workers, initializer=init, initargs=(args,)) as pool:
        t0 = 0.0
        for epoch in range(args.epochs + 1):  # one untimed pass first, as on insitu's side
            if epoch == 1:
                t0 = time.perf_counter()
            rnd.shuffle(paths)
            jobs = [(rnd.getrandbits(32), paths[s:s + args.batch]) for s in range(0, n, args.batch)]
            for b in pool.imap(make_batch, jobs):
                assert b.shape == (args.batch, 3, args.size, args.size)
    print(f"RESULT {n * args.epochs / (time.perf_counter() - t0):.1f}")


if __name__ == "__main__":
    main()
