#!/usr/bin/env python3
"""onnxruntime peer for the export benchmark: ms per face (batch 1) of each ONNX file at a given
thread count, and this core's f32 matmul rate through numpy (OpenBLAS) for the peak column.

Prints one JSON object: {"<file>": ms, ..., "numpy_gemm_gflops": g}.
"""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort


def median_ms(fn, min_runs=10, min_seconds=1.0):
    fn()
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--input-shape", help="e.g. 1,3,240,320 for models with symbolic sizes")
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    out = {}
    for path in args.models:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        shape = (
            [int(d) for d in args.input_shape.split(",")]
            if args.input_shape
            else [1, *inp.shape[1:]]
        )
        feeds = {inp.name: np.random.rand(*shape).astype(np.float32)}
        # Further inputs (a swap graph's visitor_offset) as zeros: the trained person.
        for extra in sess.get_inputs()[1:]:
            feeds[extra.name] = np.zeros(extra.shape, np.float32)
        out[os.path.basename(path)] = median_ms(lambda: sess.run(None, feeds))
    a = np.random.rand(1024, 1024).astype(np.float32)
    b = np.random.rand(1024, 1024).astype(np.float32)
    ms = median_ms(lambda: a @ b, min_runs=5, min_seconds=0.5)
    out["numpy_gemm_gflops"] = 2 * 1024**3 / (ms * 1e6)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
