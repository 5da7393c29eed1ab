#!/usr/bin/python3
"""Independent check of insitu's SSD boxes (train/boxes.c) against torchvision itself: SSDLite320's
default boxes (DefaultBoxGenerator as ssdlite320_mobilenet_v3_large builds it), SSDMatcher's
matches and BoxCoder's encoding, on a file written by tests/test_detect_boxes.cc.

File lines:  anchor X0 Y0 X1 Y1 (insitu's, in order) | object X0 Y0 X1 Y1
             | match A M (insitu's match of anchor A) | offset A D0 D1 D2 D3 (matched anchors)
Usage: /usr/bin/python3 tests/ssd_boxes_check.py FILE   (exit 0 when everything agrees)
"""
import sys

import torch
from torchvision.models.detection._utils import BoxCoder, SSDMatcher
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou


def main():
    anchors, objects, matches, offsets = [], [], {}, {}
    with open(sys.argv[1]) as f:
        for line in f:
            t = line.split()
            if t[0] == "anchor":
                anchors.append([float(v) for v in t[1:5]])
            elif t[0] == "object":
                objects.append([float(v) for v in t[1:5]])
            elif t[0] == "match":
                matches[int(t[1])] = int(t[2])
            elif t[0] == "offset":
                offsets[int(t[1])] = [float(v) for v in t[2:6]]
    mine = torch.tensor(anchors, dtype=torch.float32)

    gen = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    images = ImageList(torch.zeros(1, 3, 320, 320), [(320, 320)])
    maps = [torch.zeros(1, 8, g, g) for g in (20, 10, 5, 3, 2, 1)]
    theirs = gen(images, maps)[0]
    ok = True
    anchor_diff = (mine - theirs).abs().max().item() if mine.shape == theirs.shape else float("inf")
    ok &= anchor_diff <= 1e-3
    print(f"anchors: insitu {tuple(mine.shape)} torchvision {tuple(theirs.shape)} largest |difference| {anchor_diff:.3g} px")

    # Matching and encoding run on insitu's anchor coordinates: torchvision's differ from them by
    # rounding (above), and an object inside several anchors of one size has IoUs equal up to that
    # rounding, so its forced best anchor would be decided by the last bit of the anchors.
    gt = torch.tensor(objects, dtype=torch.float32)
    m = SSDMatcher(0.5)(box_iou(gt, mine))
    want = m.tolist()
    got = [matches[a] for a in range(len(want))]
    differ = sum(1 for a, b in zip(got, want) if a != b)
    ok &= differ == 0
    for a, (x, y) in enumerate(zip(got, want)):
        if x != y:
            print(f"  anchor {a}: insitu {x} torchvision {y}")
    print(f"matches: {sum(1 for v in want if v >= 0)} matched anchors of {len(want)}, {differ} differ")

    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    fg = torch.nonzero(m >= 0).flatten()
    enc = coder.encode_single(gt[m[fg]], mine[fg])
    mine_off = torch.tensor([offsets.get(int(a), [float("nan")] * 4) for a in fg], dtype=torch.float32)
    off_diff = (mine_off - enc).abs().max().item() if len(fg) else 0.0
    ok &= off_diff <= 1e-3  # False for NaN: an anchor torchvision matches and insitu does not
    print(f"offsets: largest |difference| {off_diff:.3g}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
