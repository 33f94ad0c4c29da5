#!/usr/bin/env python3
"""Stand-in for the two ffmpeg/ffprobe calls facekit's VideoReader makes, on GPU machines whose
image has OpenCV (with its own ffmpeg inside) but no ffmpeg executables. Used only by
scripts/gpu/check.sh; installed as both `ffmpeg` and `ffprobe` on that machine's PATH.

  ffprobe ... -show_entries stream=width,height -of csv=p=0:s=x FILE   -> WxH
  ffprobe ... -show_entries stream=nb_frames|r_frame_rate ... FILE     -> N | num/1000
  ffmpeg ... -i FILE ... -f rawvideo -pix_fmt rgb24 -                  -> raw RGB frames on stdout
"""
import os
import sys

import cv2

args = sys.argv[1:]
tool = os.path.basename(sys.argv[0])
if tool.endswith("ffprobe"):
    cap = cv2.VideoCapture(args[-1])
    if not cap.isOpened():
        sys.exit(1)
    entry = args[args.index("-show_entries") + 1]
    if entry == "stream=width,height":
        print(f"{int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}")
    elif entry == "stream=nb_frames":
        print(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    elif entry == "stream=r_frame_rate":
        print(f"{round(cap.get(cv2.CAP_PROP_FPS) * 1000)}/1000")
elif "-i" in args and args[-1] == "-":
    cap = cv2.VideoCapture(args[args.index("-i") + 1])
    if not cap.isOpened():
        sys.exit(1)
    out = sys.stdout.buffer
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).tobytes())
else:
    sys.exit(f"{tool} stand-in: only the VideoReader's decode and probe calls are supported")
