#!/usr/bin/env python3
"""The booth's detect mode per face in Python, as the peer of `cargo bench --bench detect_face`:
the same faces, the same detector graph and the same cues as `doppel-device`, built the way a
Python developer would build them, with OpenCV and NumPy around onnxruntime.

Per face: the similarity onto the detector's crop template and a warp to the crop (OpenCV);
the detector (onnxruntime, one thread); the forensic cues of `facekit::forensics::cues`
(over-blur, edge colour, double edges, mouth blur, and the face's texture against its
surround: fine detail, edges, noise, colour noise); the camera check's score (the Mahalanobis
distance of the cues' logarithms and the score's logit from the camera's real faces).

Reads the job the Rust benchmark writes and prints one JSON object:
{"faces": [{"align": ms, "network": ms, "cues": ms, "check": ms, "total": ms}, ...],
 "cues": [[8 logarithms] per face, warm-up included]}.
"""
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from booth_peer import similarity

EPS = 1e-3


def ellipse(lm):
    eye, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    iod = np.hypot(*(lm[1] - lm[0]))
    em = np.hypot(*(mouth - eye))
    cx, cy = (eye[0] + mouth[0]) / 2, (eye[1] + mouth[1]) / 2 - 0.1 * em
    return cx, cy, 0.95 * iod, 1.35 * em


class Cues:
    """The cues of one crop size: pixel grids and the interior mask made once."""

    def __init__(self, size):
        self.size = size
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        self.xs, self.ys = xs, ys
        self.interior = np.zeros((size, size), bool)
        self.interior[1:-1, 1:-1] = True
        self.band = max(size // 16, 2)
        self.kernel = np.ones((2 * self.band + 1,) * 2, np.uint8)

    def __call__(self, rgb, lm):
        cx, cy, ax, ay = ellipse(lm)
        mask = (((self.xs - cx) / ax) ** 2 + ((self.ys - cy) / ay) ** 2 <= 1).astype(np.uint8)
        inner = cv2.erode(mask, self.kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        outer = cv2.dilate(mask, self.kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        mask = mask > 0
        f = rgb.astype(np.float32)
        r, g, b = f[..., 0], f[..., 1], f[..., 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        grey = np.clip(np.rint(y), 0, 255)
        lap = np.zeros_like(grey)
        lap[1:-1, 1:-1] = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1]
                           - 4 * grey[1:-1, 1:-1])
        grad = np.zeros_like(grey)
        grad[1:-1, 1:-1] = np.hypot(grey[1:-1, 2:] - grey[1:-1, :-2],
                                    grey[2:, 1:-1] - grey[:-2, 1:-1]) / 2
        face = self.interior & inner
        ring = self.interior & outer & ~mask
        boundary = self.interior & outer & ~inner
        over_blur = (lap[ring].var() + EPS) / (lap[face].var() + EPS)
        double_edges = (grad[boundary].mean() + EPS) / (grad[face].mean() + EPS)
        cb = -0.1687 * r - 0.3313 * g + 0.5 * b
        cr = 0.5 * r - 0.4187 * g - 0.0813 * b
        just_in, just_out = mask & ~inner, outer & ~mask
        step = sum((ch[just_in].mean() - ch[just_out].mean()) ** 2 for ch in (y, cb, cr))
        spread = sum(ch[face].var() for ch in (y, cb, cr))
        edge_colour = (np.sqrt(step) + 1) / (np.sqrt(spread) + 1)
        ml, mr = lm[3], lm[4]
        half_w = 0.6 * max(abs(mr[0] - ml[0]), 2.0)
        mcx, mcy = (ml[0] + mr[0]) / 2, (ml[1] + mr[1]) / 2
        mouth = (np.abs(self.xs - mcx) <= half_w) & (np.abs(self.ys - mcy) <= 0.5 * half_w)
        mouth_blur = (lap[face & ~mouth].var() + EPS) / (lap[self.interior & mouth].var() + EPS)

        def noise(ch):
            out = np.zeros_like(ch)
            out[1:-1, 1:-1] = np.abs(ch[:-2, :-2] + ch[:-2, 2:] + ch[2:, :-2] + ch[2:, 2:]
                                     - 2 * (ch[:-2, 1:-1] + ch[1:-1, :-2] + ch[1:-1, 2:]
                                            + ch[2:, 1:-1])
                                     + 4 * ch[1:-1, 1:-1])
            return out

        def median(v):  # the upper median, as facekit takes it
            return np.partition(v, len(v) // 2)[len(v) // 2] if len(v) else 0.0

        def ratio(v):
            return (median(v[ring]) + 0.5) / (median(v[face]) + 0.5)

        values = [over_blur, edge_colour, double_edges, mouth_blur, ratio(np.abs(lap)),
                  ratio(grad), ratio(noise(y)), ratio(noise(cb) + noise(cr))]
        return np.log(np.maximum(np.array(values, np.float32), 1e-3))


def main():
    job = json.loads(Path(sys.argv[1]).read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(job["model"], opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    crop = job["crop"]
    size = crop["size"]
    template = np.array(crop["template_px"], np.float32)
    mean = np.array(crop["mean"], np.float32).reshape(3, 1, 1)
    std = np.array(crop["std"], np.float32).reshape(3, 1, 1)
    order = slice(None) if crop["order"] == "Rgb" else slice(None, None, -1)
    check = job["check"]
    centre = np.array(check["mean"], np.float32)
    n = len(centre)
    chol = np.array(check["cholesky"], np.float32).reshape(n, n)
    alarm, threshold = check["alarm"], job["threshold"]
    cue = Cues(size)
    frames = sorted(Path(job["frames"]).glob("*.jpg"))
    rows, all_cues = [], []
    for k, face in enumerate(job["faces"]):
        frame = cv2.cvtColor(cv2.imread(str(frames[face["frame"]])), cv2.COLOR_BGR2RGB)
        lm = np.array(face["landmarks"], np.float32)
        t0 = time.perf_counter()
        m = similarity(lm, template)
        moved = lm @ m[:, :2].T + m[:, 2]
        # facekit maps pixel centres (index + ½) through the similarity; OpenCV maps indices.
        m[:, 2] += 0.5 * (m[:, 0] + m[:, 1]) - 0.5
        aligned = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        t1 = time.perf_counter()
        x = (aligned.transpose(2, 0, 1)[order].astype(np.float32) - mean) / std
        p = float(sess.run(None, {name: x[None]})[0].reshape(-1)[0])
        t2 = time.perf_counter()
        c = cue(aligned, moved)
        t3 = time.perf_counter()
        q = min(max(p, 1e-4), 1 - 1e-4)
        features = np.append(c, np.log(q / (1 - q)))
        d = np.linalg.norm(np.linalg.solve(chol, features - centre))
        score = 1 / (1 + np.exp(-(np.log(threshold / (1 - threshold)) + 2 * (d - alarm))))
        t4 = time.perf_counter()
        assert np.isfinite(score)
        all_cues.append(c.tolist())
        if k >= job["warmup"]:
            ms = lambda a, b: (b - a) * 1e3
            rows.append({"align": ms(t0, t1), "network": ms(t1, t2), "cues": ms(t2, t3),
                         "check": ms(t3, t4), "total": ms(t0, t4)})
    print(json.dumps({"faces": rows, "cues": all_cues}))


if __name__ == "__main__":
    main()
