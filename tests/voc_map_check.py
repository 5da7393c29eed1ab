#!/usr/bin/python3
"""Independent check of insitu's VOC mAP (train/voc_map.c): reads ground truth, detections and
insitu's per-class APs from a file written by tests/test_detect_map.cc, recomputes the metric with
torchvision's box_iou and numpy, following the VOC devkit's VOCevaldet, and compares.

File lines:  gt IMAGE CLASS DIFFICULT X0 Y0 X1 Y1 | det IMAGE CLASS SCORE X0 Y0 X1 Y1
             | ap CLASS AP11 APAREA (nan for a class without objects) | map MAP11 MAPAREA
             | options IOU_THRESHOLD INCLUSIVE
Usage: /usr/bin/python3 tests/voc_map_check.py FILE   (exit 0 when everything agrees to 1e-9)
"""
import sys

import numpy as np
import torch
from torchvision.ops import box_iou


def read(path):
    gt, det, ap, mean, opts = [], [], {}, None, (0.5, 1)
    with open(path) as f:
        for line in f:
            t = line.split()
            if not t:
                continue
            if t[0] == "gt":
                gt.append((int(t[1]), int(t[2]), int(t[3]), [float(v) for v in t[4:8]]))
            elif t[0] == "det":
                det.append((int(t[1]), int(t[2]), float(t[3]), [float(v) for v in t[4:8]]))
            elif t[0] == "ap":
                ap[int(t[1])] = (float(t[2]), float(t[3]))
            elif t[0] == "map":
                mean = (float(t[1]), float(t[2]))
            elif t[0] == "options":
                opts = (float(t[1]), int(t[2]))
    return gt, det, ap, mean, opts


def class_ap(gt, det, c, thresh, inclusive):
    """AP of class c (11-point, area), or (nan, nan) without non-difficult objects."""
    objects = {}  # image -> (boxes, difficult, taken)
    for img, cls, diff, box in gt:
        if cls == c:
            objects.setdefault(img, ([], [], []))
            objects[img][0].append(box)
            objects[img][1].append(bool(diff))
            objects[img][2].append(False)
    npos = sum(1 for img, cls, diff, _ in gt if cls == c and not diff)
    if npos == 0:
        return float("nan"), float("nan")
    mine = [d for d in det if d[1] == c]
    scores = np.array([d[2] for d in mine], dtype=np.float32)
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros(len(mine))
    fp = np.zeros(len(mine))
    e = 1.0 if inclusive else 0.0
    for k, i in enumerate(order):
        img, _, _, box = mine[i]
        if img not in objects:
            fp[k] = 1
            continue
        boxes, diff, taken = objects[img]
        # box_iou uses continuous areas: the devkit's inclusive boxes are one pixel larger.
        a = torch.tensor([box], dtype=torch.float64)
        b = torch.tensor(boxes, dtype=torch.float64)
        a[:, 2:] += e
        b[:, 2:] += e
        ov = box_iou(a, b)[0].numpy()
        j = int(np.argmax(ov))
        if ov[j] >= thresh:
            if not diff[j]:
                if not taken[j]:
                    tp[k] = 1
                    taken[j] = True
                else:
                    fp[k] = 1
        else:
            fp[k] = 1
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    rec = ctp / npos
    prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    ap11 = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        p = prec[rec >= t]
        ap11 += (p.max() if p.size else 0.0) / 11
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    area = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    return ap11, area


def main():
    gt, det, ap, mean, (thresh, inclusive) = read(sys.argv[1])
    worst = 0.0
    mine11, mine_area = [], []
    for c in range(20):
        a11, aa = class_ap(gt, det, c, thresh, inclusive)
        theirs = ap.get(c, (float("nan"), float("nan")))
        for x, y in ((a11, theirs[0]), (aa, theirs[1])):
            if np.isnan(x) != np.isnan(y):
                print(f"class {c}: one side has no objects ({x} vs {y})")
                worst = float("inf")
            elif not np.isnan(x):
                worst = max(worst, abs(x - y))
        if not np.isnan(a11):
            mine11.append(a11)
            mine_area.append(aa)
    m11, marea = float(np.mean(mine11)), float(np.mean(mine_area))
    if mean is not None:
        worst = max(worst, abs(m11 - mean[0]), abs(marea - mean[1]))
    print(f"classes {len(mine11)}  detections {len(det)}  objects {len(gt)}  "
          f"mAP11 script {m11:.6f} insitu {mean[0]:.6f}  mAParea script {marea:.6f} insitu {mean[1]:.6f}  "
          f"largest |difference| {worst:.3g}")
    sys.exit(0 if worst <= 1e-9 else 1)


if __name__ == "__main__":
    main()
