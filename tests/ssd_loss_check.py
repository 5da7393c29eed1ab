#!/usr/bin/python3
"""Independent check of insitu's multibox loss (kernels/cpu/multibox_loss.c) and SSD
post-processing (train/boxes.c) against torchvision's own SSD.compute_loss and
SSD.postprocess_detections (SSDLite's settings), on a file written by
tests/test_detect_torchvision.cc.

File lines:  sizes IMAGES ANCHORS CLASSES | anchor X0 Y0 X1 Y1 | object IMAGE LABEL X0 Y0 X1 Y1
             | logits IMAGE ANCHOR Z... | box IMAGE ANCHOR D0..D3 | loss BOX CLASS
             | det IMAGE LABEL SCORE X0 Y0 X1 Y1 (insitu's detections, in order)
Usage: /usr/bin/python3 tests/ssd_loss_check.py FILE   (exit 0 when everything agrees)
"""
import sys
from types import SimpleNamespace

import torch
from torchvision.models.detection._utils import BoxCoder, SSDMatcher
from torchvision.models.detection.ssd import SSD
from torchvision.ops import box_iou


def main():
    objects, dets, anchors = {}, {}, []
    with open(sys.argv[1]) as f:
        for line in f:
            t = line.split()
            if t[0] == "sizes":
                n, na, nc = map(int, t[1:4])
                logits = torch.zeros(n, na, nc)
                box = torch.zeros(n, na, 4)
            elif t[0] == "anchor":
                anchors.append([float(v) for v in t[1:5]])
            elif t[0] == "object":
                objects.setdefault(int(t[1]), []).append((int(t[2]), [float(v) for v in t[3:7]]))
            elif t[0] == "logits":
                logits[int(t[1]), int(t[2])] = torch.tensor([float(v) for v in t[3:]])
            elif t[0] == "box":
                box[int(t[1]), int(t[2])] = torch.tensor([float(v) for v in t[3:7]])
            elif t[0] == "loss":
                mine = (float(t[1]), float(t[2]))
            elif t[0] == "det":
                dets.setdefault(int(t[1]), []).append((int(t[2]), float(t[3]), [float(v) for v in t[4:8]]))
    a = torch.tensor(anchors)
    targets, matched = [], []
    for i in range(n):
        labels = torch.tensor([o[0] for o in objects[i]], dtype=torch.int64)
        boxes = torch.tensor([o[1] for o in objects[i]])
        targets.append({"boxes": boxes, "labels": labels})
        matched.append(SSDMatcher(0.5)(box_iou(boxes, a)))
    ns = SimpleNamespace(box_coder=BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)), neg_to_pos_ratio=3,
                         score_thresh=0.001, nms_thresh=0.55, detections_per_img=300, topk_candidates=300)
    head = {"cls_logits": logits, "bbox_regression": box}
    loss = SSD.compute_loss(ns, targets, head, [a] * n, matched)
    theirs = (loss["bbox_regression"].item(), loss["classification"].item())
    rel = max(abs(x - y) / max(abs(y), 1e-6) for x, y in zip(mine, theirs))
    ok = rel <= 1e-5
    print(f"loss: insitu box {mine[0]:.6f} class {mine[1]:.6f}  torchvision box {theirs[0]:.6f} "
          f"class {theirs[1]:.6f}  largest relative difference {rel:.3g}")

    out = SSD.postprocess_detections(ns, head, [a] * n, [(320, 320)] * n)
    worst_box, worst_score, count_differ, label_differ, total = 0.0, 0.0, 0, 0, 0
    for i in range(n):
        tv = out[i]
        mine_i = dets.get(i, [])
        total += len(tv["scores"])
        if len(mine_i) != len(tv["scores"]):
            count_differ += 1
            continue
        for (lab, sc, bx), tl, ts, tb in zip(mine_i, tv["labels"], tv["scores"], tv["boxes"]):
            label_differ += lab != int(tl)
            worst_score = max(worst_score, abs(sc - float(ts)))
            worst_box = max(worst_box, max(abs(p - float(q)) for p, q in zip(bx, tb)))
    ok &= count_differ == 0 and label_differ == 0 and worst_score <= 1e-5 and worst_box <= 1e-2
    print(f"detections: torchvision {total} over {n} images; images whose count differs {count_differ}, "
          f"labels differing {label_differ}, largest |score difference| {worst_score:.3g}, "
          f"largest |box difference| {worst_box:.3g} px")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
