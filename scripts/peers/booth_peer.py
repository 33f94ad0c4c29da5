#!/usr/bin/env python3
"""The booth's frame pipeline in Python, as the peer of `make bench-booth`: the same frames, the
same models and the same tracking policy as `doppel-device`, built the way a Python developer
would build it, with OpenCV (JPEG decoding, warps, erosion, blur) around onnxruntime.

Per frame: decode the camera's JPEG; find the face (the whole frame scaled to `detect_width`
every `full_every` frames or when there is none, else RetinaFace on a `crop_size`² crop of twice
the last box; a crop that misses falls back to the whole frame); One-Euro smoothing of the
landmarks; the similarity onto the bundle's template and a warp to the crop; the swap model;
mask (learned ∪ face ellipse, eroded, feathered), colour transfer in YCbCr, the inverse warp of
face and mask over the crop's frame box only, alpha mixing; the SYNTHETIC label.

Reads the job the Rust benchmark writes (frames, models, crop spec, policy) and prints one JSON
object: {"<model>": {"frames": [{"decode": ms, ...}, ...], "swapped": n}, "numpy_gemm_gflops": g}.
"""
import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

STRIDES = (8, 16, 32)
SIZES = ((16.0, 32.0), (64.0, 128.0), (256.0, 512.0))
VARIANCES = (0.1, 0.2)


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class RetinaFace:
    """RetinaFace-MobileNet0.25: BGR input minus the means, priors as facekit makes them."""

    def __init__(self, path, threads, score_threshold, nms_iou):
        self.sess = session(path, threads)
        self.input = self.sess.get_inputs()[0].name
        self.threshold = score_threshold
        self.nms_iou = nms_iou
        self.priors = {}
        self.mean = np.array([104.0, 117.0, 127.0], np.float32)

    def prior_table(self, w, h):
        if (w, h) not in self.priors:
            rows = []
            for stride, sizes in zip(STRIDES, SIZES):
                nx, ny = -(-w // stride), -(-h // stride)
                ys, xs = np.mgrid[0:ny, 0:nx]
                cx = ((xs + 0.5) * stride).ravel()
                cy = ((ys + 0.5) * stride).ravel()
                for_size = [np.stack([cx, cy, np.full_like(cx, s)], 1) for s in sizes]
                rows.append(np.stack(for_size, 1).reshape(-1, 3))
            self.priors[(w, h)] = np.concatenate(rows).astype(np.float32)
        return self.priors[(w, h)]

    def detect(self, bgr):
        h, w = bgr.shape[:2]
        x = (bgr.astype(np.float32) - self.mean).transpose(2, 0, 1)[None]
        loc, conf, lms = self.sess.run(None, {self.input: np.ascontiguousarray(x)})
        loc, conf, lms = loc[0], conf[0], lms[0]
        score = conf[:, 1]
        keep = np.nonzero(score >= self.threshold)[0]
        if keep.size == 0:
            return []
        keep = keep[np.argsort(-score[keep], kind="stable")][:500]
        p = self.prior_table(w, h)[keep]
        vc, vs = VARIANCES
        cx = p[:, 0] + loc[keep, 0] * vc * p[:, 2]
        cy = p[:, 1] + loc[keep, 1] * vc * p[:, 2]
        bw = p[:, 2] * np.exp(loc[keep, 2] * vs)
        bh = p[:, 2] * np.exp(loc[keep, 3] * vs)
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        marks = lms[keep].reshape(-1, 5, 2) * vc * p[:, None, 2:3] + p[:, None, :2]
        faces = []
        for i in range(len(keep)):
            if all(iou(boxes[i], f[0]) <= self.nms_iou for f in faces):
                faces.append((boxes[i], marks[i]))
        return faces


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def largest(faces):
    return max(faces, key=lambda f: (f[0][2] - f[0][0]) * (f[0][3] - f[0][1]), default=None)


class Tracker:
    """facekit::face_detection::track, the same policy."""

    def __init__(self, det, policy):
        self.det, self.p = det, policy
        self.last, self.since_full = None, 0

    def full(self, frame):
        self.since_full = 0
        w = self.p["detect_width"]
        fh, fw = frame.shape[:2]
        if w == 0 or w >= fw:
            return largest(self.det.detect(frame))
        h = max(1, round(fh * w / fw))
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        s = fw / w
        f = largest(self.det.detect(small))
        return None if f is None else (f[0] * s, f[1] * s)

    def crop(self, frame):
        x0, y0, x1, y1 = self.last[0]
        size = self.p["crop_size"]
        side = max(max(x1 - x0, y1 - y0) * self.p["crop_scale"], 1.0)
        s = size / side
        ox, oy = (x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2
        m = np.array([[s, 0, -ox * s], [0, s, -oy * s]], np.float32)
        crop = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        faces = [(b / s + [ox, oy, ox, oy], l / s + [ox, oy]) for b, l in self.det.detect(crop)]
        overlapping = [(iou(f[0], self.last[0]), f) for f in faces]
        overlapping = [o for o in overlapping if o[0] > 0]
        if overlapping:
            return max(overlapping, key=lambda o: o[0])[1]
        return largest(faces)

    def next(self, frame):
        full_due = self.since_full + 1 >= max(self.p["full_every"], 1)
        if self.last is None or full_due:
            face, how = self.full(frame), "full"
        else:
            self.since_full += 1
            if self.p["crop_size"] == 0:
                face, how = self.last, "held"
            else:
                face, how = self.crop(frame), "crop"
                if face is None:
                    face, how = self.full(frame), "crop-then-full"
        self.last = face
        return face, how


class OneEuro:
    def __init__(self, min_cutoff, beta):
        self.min_cutoff, self.beta, self.state = min_cutoff, beta, None

    @staticmethod
    def alpha(cutoff, rate):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * rate)

    def filter(self, x, rate):
        if self.state is None:
            self.state = (x, np.zeros_like(x))
            return x
        prev, dprev = self.state
        ad = self.alpha(1.0, rate)
        d = ad * (x - prev) * rate + (1 - ad) * dprev
        a = self.alpha(self.min_cutoff + self.beta * np.abs(d), rate)
        out = a * x + (1 - a) * prev
        self.state = (out, d)
        return out


def similarity(src, dst):
    """Least-squares similarity src -> dst (Umeyama, no reflection) as a 2×3 matrix."""
    ms, md = src.mean(0), dst.mean(0)
    p, q = src - ms, dst - md
    norm = (p * p).sum()
    a = (p * q).sum() / norm
    b = (p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]).sum() / norm
    tx = md[0] - (a * ms[0] - b * ms[1])
    ty = md[1] - (b * ms[0] + a * ms[1])
    return np.array([[a, -b, tx], [b, a, ty]], np.float32)


def ellipse_mask(size, lm):
    eye, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    iod = np.hypot(*(lm[1] - lm[0]))
    em = np.hypot(*(mouth - eye))
    cx, cy = (eye[0] + mouth[0]) / 2, (eye[1] + mouth[1]) / 2 - 0.1 * em
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    inside = ((xs - cx) / (0.95 * iod)) ** 2 + ((ys - cy) / (1.35 * em)) ** 2 <= 1
    return inside.astype(np.uint8) * 255


def colour_transfer(face_bgr, orig_bgr, mask, shading_sigma=3.0):
    """facekit::blend::colour_transfer: colour by Reinhard's mean and spread; brightness split
    at shading_sigma, the shading matched in mean and spread, the detail scaled by the ratio of
    mean brightness only."""
    sel = mask > 127
    if not sel.any():
        return face_bgr
    g = cv2.cvtColor(face_bgr, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    o = cv2.cvtColor(orig_bgr, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    mg, sg = g[sel].mean(0), g[sel].std(0) + 1e-3
    mo, so = o[sel].mean(0), o[sel].std(0)
    out = (g - mg) * (so / sg) + mo
    gs = cv2.GaussianBlur(g[..., 0], (0, 0), shading_sigma)
    os_ = cv2.GaussianBlur(o[..., 0], (0, 0), shading_sigma)
    light = np.clip(mo[0] / max(mg[0], 1.0), 0.5, 2.0)
    out[..., 0] = ((gs - gs[sel].mean()) * (os_[sel].std() / (gs[sel].std() + 1e-3))
                   + os_[sel].mean() + (g[..., 0] - gs) * light)
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR)


def paste_back(frame, face, mask, to_crop, size):
    """Inverse warp of face and mask over the crop square's frame box only, then alpha mixing."""
    inv = cv2.invertAffineTransform(to_crop)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float32) @ inv.T
    fh, fw = frame.shape[:2]
    x0, y0 = max(int(np.floor(corners[:, 0].min())), 0), max(int(np.floor(corners[:, 1].min())), 0)
    x1, y1 = min(int(np.ceil(corners[:, 0].max())), fw), min(int(np.ceil(corners[:, 1].max())), fh)
    if x0 >= x1 or y0 >= y1:
        return
    dsize = (x1 - x0, y1 - y0)
    # Box pixel -> crop pixel: to_crop after the box's offset in the frame.
    m = to_crop.copy()
    m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
    # Bicubic as ours (OpenCV's cubic is a = -0.75 where ours is Catmull-Rom's -0.5; the same
    # 16 taps a pixel).
    warped = cv2.warpAffine(face, m, dsize, flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(mask, m, dsize, flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT)
    roi = frame[y0:y1, x0:x1]
    a = alpha.astype(np.float32)[..., None] * (1.0 / 255.0)
    roi[:] = (warped * a + roi * (1.0 - a) + 0.5).astype(np.uint8)


def run(job, model, threads, frames):
    det = RetinaFace(job["face_detector"], threads, job["score_threshold"], job["nms_iou"])
    swap = session(model["path"], threads)
    swap_in = swap.get_inputs()[0].name
    # A graph that shifts identities follows its visitor as ours does (facekit::visitor): the
    # running mean of the faces' identity_offset, fed back negated; a new visitor's first face
    # runs twice. One visitor per clip here, so no forgetting and no window.
    visitor_in = swap.get_inputs()[1] if len(swap.get_inputs()) > 1 else None
    visitor_sum, visitor_n = None, 0
    crop = job["crop"]
    size, template = crop["size"], np.array(crop["template_px"], np.float32)
    mean, std = np.array(crop["mean"], np.float32), np.array(crop["std"], np.float32)
    rgb_order = crop["order"] == "Rgb"
    blend = job["blend"]
    kernel = np.ones((2 * abs(blend["erode"]) + 1,) * 2, np.uint8)
    tracker = Tracker(det, job["policy"])
    smoother = OneEuro(job["smooth_cutoff"], job["smooth_beta"])
    out, swapped = [], 0
    for jpeg in frames:
        t = {}
        t0 = time.perf_counter()
        frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        t["decode"] = time.perf_counter() - t0
        s = time.perf_counter()
        face, how = tracker.next(frame)
        t["detect"] = time.perf_counter() - s
        t["align"] = t["swap"] = t["blend"] = 0.0
        if face is None:
            smoother.state = None
        else:
            lm = smoother.filter(face[1].reshape(-1).astype(np.float32), job["rate"]).reshape(5, 2)
            s = time.perf_counter()
            to_crop = similarity(lm, template)
            aligned = cv2.warpAffine(frame, to_crop, (size, size), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
            t["align"] = time.perf_counter() - s
            s = time.perf_counter()
            x = aligned[..., ::-1] if rgb_order else aligned
            x = ((x.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None]
            feeds = {swap_in: np.ascontiguousarray(x)}
            if visitor_in is None:
                rgb, m = swap.run(None, feeds)
            else:
                first = visitor_n == 0
                if first:
                    feeds[visitor_in.name] = np.zeros(visitor_in.shape, np.float32)
                    visitor_sum = swap.run(None, feeds)[2].astype(np.float64)
                    visitor_n = 1
                feeds[visitor_in.name] = (-visitor_sum / visitor_n).astype(np.float32)
                rgb, m, offset = swap.run(None, feeds)
                if not first:
                    visitor_sum += offset
                    visitor_n += 1
            face_px = (np.clip(rgb[0].transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
            face_bgr = np.ascontiguousarray(face_px[..., ::-1])
            learned = (np.clip(m[0, 0], 0, 1) * 255 + 0.5).astype(np.uint8)
            t["swap"] = time.perf_counter() - s
            s = time.perf_counter()
            lm_crop = lm @ to_crop[:, :2].T + to_crop[:, 2]
            mask = np.maximum(learned, ellipse_mask(size, lm_crop))
            if blend["erode"] > 0:
                mask = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            elif blend["erode"] < 0:
                mask = cv2.dilate(mask, kernel)
            if blend["feather"] > 0:
                mask = cv2.GaussianBlur(mask, (0, 0), blend["feather"])
            if blend["colour_transfer"]:
                face_bgr = colour_transfer(face_bgr, aligned, mask)
            paste_back(frame, face_bgr, mask, to_crop, size)
            t["blend"] = time.perf_counter() - s
            swapped += 1
        s = time.perf_counter()
        cv2.rectangle(frame, (8, 8), (150, 34), (0, 0, 0), -1)
        cv2.putText(frame, "SYNTHETIC", (14, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        t["draw"] = time.perf_counter() - s
        t["total"] = time.perf_counter() - t0
        row = {k: v * 1e3 for k, v in t.items()}
        row["search"] = how
        out.append(row)
    return {"frames": out, "swapped": swapped}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("job", help="the JSON job the booth benchmark writes")
    args = ap.parse_args()
    job = json.loads(Path(args.job).read_text())
    frames = [p.read_bytes() for p in sorted(Path(job["frames"]).glob("*.jpg"))]
    cv2.setNumThreads(job["threads"])
    result = {}
    for model in job["models"]:
        warm = job["warmup"]
        run(job, model, job["threads"], frames[:warm])
        result[model["name"]] = run(job, model, job["threads"], frames)
    a = np.random.rand(1024, 1024).astype(np.float32)
    b = np.random.rand(1024, 1024).astype(np.float32)
    a @ b
    times = []
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    result["numpy_gemm_gflops"] = 2 * 1024**3 / (min(times) * 1e9)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
