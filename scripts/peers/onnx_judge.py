#!/usr/bin/env python3
"""Outside judge for doppel's hand-written ONNX: `onnx.checker` (full check) and onnxruntime.

Runs MODEL on the float32 input in INPUT (raw little-endian, batch inferred from the model's
input shape; further inputs, such as a swap graph's visitor_offset, whole from --feed NAME=FILE,
and zeros when not fed: a swap graph then swaps the person it was trained on) and compares
every output (or those --outputs names), concatenated per item in graph order, with EXPECTED.
Prints one JSON line {"max_abs": ..., "psnr_db": ...}; exits 1 when --tol or --min-psnr fails.
"""
import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("expected")
    ap.add_argument("--tol", type=float, help="max |ort - expected| allowed")
    ap.add_argument("--min-psnr", type=float, help="lowest PSNR (signal range 1) allowed")
    ap.add_argument("--feed", action="append", default=[], metavar="NAME=FILE",
                    help="a further input, raw little-endian float32 of its whole shape")
    ap.add_argument("--outputs", help="comma-separated output names to compare (default: all)")
    args = ap.parse_args()

    onnx.checker.check_model(args.model, full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    per_item = int(np.prod(inp.shape[1:]))
    x = np.fromfile(args.input, dtype="<f4")
    x = x.reshape([len(x) // per_item] + list(inp.shape[1:]))
    feeds = {inp.name: x}
    shapes = {i.name: i.shape for i in sess.get_inputs()}
    for item in args.feed:
        name, path = item.split("=", 1)
        if name not in shapes:
            print(json.dumps({"error": f"the model has no input {name!r}"}))
            return 1
        feeds[name] = np.fromfile(path, dtype="<f4").reshape(shapes[name])
    for i in sess.get_inputs()[1:]:
        if i.name not in feeds:
            feeds[i.name] = np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
    names = args.outputs.split(",") if args.outputs else None
    outs = sess.run(names, feeds)
    got = np.concatenate([o.reshape(len(x), -1) for o in outs], axis=1).ravel()
    want = np.fromfile(args.expected, dtype="<f4")
    if got.shape != want.shape:
        print(json.dumps({"error": f"shape {got.shape} vs expected {want.shape}"}))
        return 1
    diff = np.abs(got - want)
    mse = max(float(np.mean(diff.astype(np.float64) ** 2)), 1e-12)
    result = {"max_abs": float(diff.max()), "psnr_db": 10 * np.log10(1.0 / mse)}
    print(json.dumps(result))
    if args.tol is not None and result["max_abs"] > args.tol:
        return 1
    if args.min_psnr is not None and result["psnr_db"] < args.min_psnr:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
