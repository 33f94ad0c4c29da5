#!/usr/bin/env python3
"""Outside identity judge for face swaps: dlib's face detector and face-recognition descriptor.

Not our code and not trained by us: dlib's frontal HOG face detector, its 5-point shape
predictor and its ResNet face descriptor (99.38% on LFW; two faces closer than 0.6 are the
same person by dlib's own rule), from PyPI `dlib-bin` and `face-recognition-models`.

Input: a JSON job (first argument)

    {"references": {"A": ["a/0001.png", ...], "B": [...]},
     "directions": [{"name": "A->B", "source": "A", "target": "B",
                     "swapped": ["s/0001.png", ...], "original": ["o/0001.png", ...]}]}

`references` are real frames of each person (their mean descriptor is that person);
`swapped[i]` is `original[i]` with its face swapped. Per direction the judge reports, over the
swapped frames:

- `face_found`: the share where dlib's detector finds a face at all;
- `measured`: frames where dlib finds the face in the *original* frame (the box the swap is
  judged at: a swap must not be judged where it moved the face);
- `transfer`: the share of measured frames whose swapped face is nearer the target's mean
  descriptor than the source's;
- `verified`: the share within 0.6 of the target's mean (dlib's same-person distance);
- median distances to both means.

The same numbers for the originals (`original_verified_as_source`) say how well the judge
recognises the source person in these very frames. Output: one JSON document on stdout.
"""
import json
import sys

import dlib
import face_recognition_models as models
import numpy as np

SAME_PERSON = 0.6
# Upsampling once lets the HOG detector find faces down to ~40 px (the sample videos' faces
# are 40-120 px).
UPSAMPLE = 1


class Judge:
    def __init__(self):
        self.detector = dlib.get_frontal_face_detector()
        self.shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self.net = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def faces(self, image):
        return list(self.detector(image, UPSAMPLE))

    def descriptor(self, image, box):
        shape = self.shapes(image, box)
        return np.array(self.net.compute_face_descriptor(image, shape, 0))

    def largest(self, image):
        boxes = self.faces(image)
        return max(boxes, key=lambda b: b.width() * b.height()) if boxes else None


def load(path):
    return dlib.load_rgb_image(path)


def median(values):
    return float(np.median(values)) if values else None


def share(flags, n):
    return sum(flags) / n if n else None


def main():
    job = json.load(open(sys.argv[1]))
    judge = Judge()

    means, refs = {}, {}
    for person, frames in job["references"].items():
        descs = []
        for path in frames:
            image = load(path)
            box = judge.largest(image)
            if box is not None:
                descs.append(judge.descriptor(image, box))
        refs[person] = {"frames": len(frames), "faces": len(descs)}
        if not descs:
            print(json.dumps({"error": f"no face found in the references of {person}"}))
            return 1
        means[person] = np.mean(descs, axis=0)
        spread = [float(np.linalg.norm(d - means[person])) for d in descs]
        refs[person]["median_distance_to_own_mean"] = median(spread)
    people = list(means)
    refs_apart = (
        float(np.linalg.norm(means[people[0]] - means[people[1]])) if len(people) == 2 else None
    )

    out = []
    for d in job["directions"]:
        source, target = means[d["source"]], means[d["target"]]
        found, transfer, verified, to_target, to_source = [], [], [], [], []
        original_verified = []
        for swapped_path, original_path in zip(d["swapped"], d["original"]):
            swapped, original = load(swapped_path), load(original_path)
            found.append(bool(judge.faces(swapped)))
            box = judge.largest(original)
            if box is None:
                continue
            desc = judge.descriptor(swapped, box)
            dt, ds = float(np.linalg.norm(desc - target)), float(np.linalg.norm(desc - source))
            to_target.append(dt)
            to_source.append(ds)
            transfer.append(dt < ds)
            verified.append(dt < SAME_PERSON)
            real = judge.descriptor(original, box)
            original_verified.append(float(np.linalg.norm(real - source)) < SAME_PERSON)
        n = len(transfer)
        out.append(
            {
                "name": d["name"],
                "source": d["source"],
                "target": d["target"],
                "frames": len(d["swapped"]),
                "face_found": share(found, len(found)),
                "measured": n,
                "transfer": share(transfer, n),
                "verified": share(verified, n),
                "median_distance_to_target": median(to_target),
                "median_distance_to_source": median(to_source),
                "original_verified_as_source": share(original_verified, n),
            }
        )
    print(
        json.dumps(
            {
                "judge": "dlib frontal HOG detector + 5-point shape predictor + ResNet face descriptor",
                "same_person_distance": SAME_PERSON,
                "references": refs,
                "reference_means_apart": refs_apart,
                "directions": out,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
