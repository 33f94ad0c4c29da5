#!/usr/bin/env python3
"""How far apart people sit in a swap graph's `identity_offset` (the code the booth follows
its visitors by): for each dataset, its own faces' distances from the mean of its first faces
(1, 5, 25 or half of them) against other datasets' faces' distances from that mean, with the
AUC between the two. Run with onnxruntime outside our code:

    .venv/bin/python scripts/visitor_codes.py <bundle>/models/swap_A_to_B.onnx DATASET...

DATASET: a folder from `host-trainer extract` (its faces/*.png, up to 240 taken evenly).
"""
import glob
import sys

import cv2
import numpy as np
import onnxruntime as ort


def main():
    model, *datasets = sys.argv[1:]
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    size = inputs[0].shape[2]

    def codes(folder, n=240):
        files = sorted(glob.glob(folder + "/faces/*.png"))
        files = files[:: max(1, len(files) // n)][:n]
        out = []
        for i in range(0, len(files), 32):
            x = np.stack([
                cv2.resize(cv2.imread(f)[:, :, ::-1], (size, size), interpolation=cv2.INTER_AREA)
                .astype(np.float32).transpose(2, 0, 1) / 255
                for f in files[i:i + 32]
            ])
            feeds = {inputs[0].name: x}
            for extra in inputs[1:]:
                shape = [d if isinstance(d, int) else 1 for d in extra.shape]
                feeds[extra.name] = np.zeros(shape, np.float32)
            out.append(sess.run(["identity_offset"], feeds)[0].reshape(len(x), -1))
        return np.concatenate(out)

    people = {d.rstrip("/").split("/")[-1]: codes(d) for d in datasets}

    def auc(pos, neg):
        return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())

    for p, cp in people.items():
        half = len(cp) // 2
        for n in (1, 5, 25, half):
            mean = cp[half - n:half].mean(0)
            own = np.linalg.norm(cp[half:] - mean, axis=1)
            for q, cq in people.items():
                if q == p:
                    continue
                other = np.linalg.norm(cq - mean, axis=1)
                print(f"{p} (mean of {n}) vs {q}: AUC {auc(other, own):.3f}, own p50/p99 "
                      f"{np.median(own):.1f}/{np.percentile(own, 99):.1f}, other's p1/p50 "
                      f"{np.percentile(other, 1):.1f}/{np.median(other):.1f}")


if __name__ == "__main__":
    sys.exit(main())
