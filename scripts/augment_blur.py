#!/usr/bin/env python3
"""How much fine detail the trainer's random similarity takes from its training targets.

The faces of a dataset are stored at the crop's own size, and `stages/train/augment.rs`
rotates, zooms and shifts input and target alike by bilinear resampling at that size; a
resample at a fractional offset is a small blur. This applies the same transform (the same
sampling of angle, zoom and shift, the same pixel-centre convention) to a dataset's faces and
prints the variance of the Laplacian over the face's central half, target / face:

    .venv/bin/python scripts/augment_blur.py DATASET [FACES]

DATASET: a folder from `host-trainer extract`; its first FACES (300) faces/*.png.
"""
import glob
import sys

import cv2
import numpy as np


def sharpness(grey):
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    n = lap.shape[0]
    q = n // 4
    return lap[q:n - q, q:n - q].var()


def augment(face, rng, rotate_deg, zoom, shift, interpolation):
    """augment.rs's target: about the crop centre, source -> target = rotate·zoom, then shift."""
    s = face.shape[0]

    def uni(m):
        return rng.uniform(-m, m) if m > 0 else 0.0

    angle = np.radians(uni(rotate_deg))
    scale = 1.0 + uni(zoom)
    tx, ty = uni(shift) * s, uni(shift) * s
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    c = s / 2
    # The same map in OpenCV's convention (pixel centres at integers, augment.rs's at +0.5).
    m = np.array([[a, -b, c - (a * c - b * c) + tx - 0.5 + 0.5 * (a - b)],
                  [b, a, c - (b * c + a * c) + ty - 0.5 + 0.5 * (a + b)]])
    return cv2.warpAffine(face, m, (s, s), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)


def main():
    dataset = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    paths = sorted(glob.glob(f"{dataset}/faces/*.png"))[:count]
    faces = [cv2.imread(p, cv2.IMREAD_GRAYSCALE).astype(np.float64) for p in paths]
    cases = [
        ("none (a flip maps pixels onto pixels)", 0, 0, 0, cv2.INTER_LINEAR),
        ("rotate 10, zoom 0.05, shift 0.05 (the defaults), bilinear", 10, 0.05, 0.05, cv2.INTER_LINEAR),
        ("shift 0.05 alone, bilinear", 0, 0, 0.05, cv2.INTER_LINEAR),
        ("the defaults, bicubic", 10, 0.05, 0.05, cv2.INTER_CUBIC),
    ]
    print(f"{len(faces)} faces of {dataset}; variance of the Laplacian, target / face:")
    for name, rotate_deg, zoom, shift, interpolation in cases:
        rng = np.random.default_rng(1)
        ratios = [sharpness(augment(f, rng, rotate_deg, zoom, shift, interpolation)) / sharpness(f)
                  for f in faces]
        p10, p50, p90 = np.percentile(ratios, [10, 50, 90])
        print(f"  {name}: median {p50:.2f} (p10 {p10:.2f}, p90 {p90:.2f})")


if __name__ == "__main__":
    main()
