#!/usr/bin/env python3
"""Python peer of `host-trainer extract` for the benchmark: the same work (decode with ffmpeg,
RetinaFace detect with onnxruntime, prior decoding + NMS, 5-point similarity alignment and a
bilinear 64x64 crop) in numpy, the way a Python deepfake tool would do it.

Prints one line: `frames=<n> seconds=<s> fps=<f> faces=<k>`.
"""
import argparse
import subprocess
import time

import numpy as np
import onnxruntime as ort

STRIDES = [8, 16, 32]
SIZES = [(16, 32), (64, 128), (256, 512)]
MEAN_BGR = np.array([104, 117, 127], np.float32)
UNIT_TEMPLATE = np.array([[0.341916, 0.461574], [0.656534, 0.459834], [0.500225, 0.640505],
                          [0.370976, 0.824692], [0.631517, 0.823251]], np.float32)


def frames(path):
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0:s=x", path],
                           capture_output=True, text=True, check=True)
    w, h = map(int, probe.stdout.strip().split("x"))
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "rawvideo",
                             "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    size = w * h * 3
    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    proc.wait()


def priors(w, h):
    out = []
    for s, sizes in zip(STRIDES, SIZES):
        nx, ny = -(-w // s), -(-h // s)
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], 1)
        sz = np.tile(np.array(sizes, np.float32), nx * ny)
        out.append(np.column_stack([np.repeat(centres, len(sizes), 0), sz]))
    return np.concatenate(out).astype(np.float32)


def nms(boxes, scores, thr=0.4):
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx0 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        iou = inter / (area(boxes[i]) + area(boxes[order[1:]]) - inter)
        order = order[1:][iou <= thr]
    return keep


def similarity(src, dst):
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = (s ** 2).sum()
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    t = md - np.array([a * ms[0] - b * ms[1], b * ms[0] + a * ms[1]])
    return a, b, t


def warp(frame, a, b, t, size):
    s2 = a * a + b * b
    ia, ib = a / s2, -b / s2
    v, u = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    u, v = u - t[0], v - t[1]
    x = ia * u - ib * v - 0.5
    y = ib * u + ia * v - 0.5
    h, w = frame.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    f = frame.astype(np.float32)
    top = f[y0, x0] * (1 - fx) + f[y0, x1] * fx
    bot = f[y1, x0] * (1 - fx) + f[y1, x1] * fx
    return np.clip(np.rint(top * (1 - fy) + bot * fy), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--margin", type=float, default=0.125)
    args = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    template = args.size * (args.margin + (1 - 2 * args.margin) * UNIT_TEMPLATE)
    cache = {}
    n = faces = 0
    start = time.perf_counter()
    for frame in frames(args.input):
        h, w = frame.shape[:2]
        if (w, h) not in cache:
            cache[(w, h)] = priors(w, h)
        p = cache[(w, h)]
        x = (frame[..., ::-1].astype(np.float32) - MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, lms = sess.run(None, {"input": np.ascontiguousarray(x)})
        scores = conf[0, :, 1]
        idx = np.where(scores >= 0.5)[0]
        pr, lo, lm = p[idx], loc[0, idx], lms[0, idx]
        cxy = pr[:, :2] + lo[:, :2] * 0.1 * pr[:, 2:3]
        wh = pr[:, 2:3] * np.exp(lo[:, 2:] * 0.2)
        boxes = np.concatenate([cxy - wh / 2, cxy + wh / 2], 1)
        pts = pr[:, None, :2] + lm.reshape(-1, 5, 2) * 0.1 * pr[:, None, 2:3]
        for k in nms(boxes, scores[idx]):
            a, b, t = similarity(pts[k], template)
            warp(frame, a, b, t, args.size)
            faces += 1
        n += 1
    secs = time.perf_counter() - start
    print(f"frames={n} seconds={secs:.3f} fps={n / secs:.1f} faces={faces}")


if __name__ == "__main__":
    main()
