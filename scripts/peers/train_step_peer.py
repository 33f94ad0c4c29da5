#!/usr/bin/env python3
"""PyTorch peer for the train-step benchmark: builds the autoencoder from the same spec JSON that
`host-trainer model-info --preset P --json` prints, and times the step the Rust benchmark times in
its `ae-only` row: both decoders, L1 reconstruction, backward, Adam.

With --rounds R it times R rounds and prints the best.
Prints one line: `preset=<p> batch=<b> threads=<t> ms_per_step=<ms>`.
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def act(name):
    return {"None": nn.Identity(), "Leaky": nn.LeakyReLU(0.1), "Sigmoid": nn.Sigmoid()}[name]


def build(net):
    layers = []
    shape = net["input"]
    c = shape["Chw"][0] if "Chw" in shape else shape["Flat"]
    for layer in net["layers"]:
        if layer == "Flatten":
            layers.append(nn.Flatten())
            continue
        (kind, p), = layer.items()
        if kind == "Conv":
            layers += [nn.Conv2d(c, p["out"], p["kernel"], p["stride"], p["kernel"] // 2), act(p["act"])]
            c = p["out"]
        elif kind == "SepConv":
            layers += [nn.Conv2d(c, c, p["kernel"], p["stride"], p["kernel"] // 2, groups=c),
                       nn.Conv2d(c, p["out"], 1), act(p["act"])]
            c = p["out"]
        elif kind == "Dense":
            if isinstance(c, list):
                c = c[0]
            prev = layers_flat_size(layers, net)
            layers += [nn.Linear(prev, p["out"]), act(p["act"])]
            c = p["out"]
        elif kind == "Reshape":
            layers.append(nn.Unflatten(1, (p["c"], p["h"], p["w"])))
            c = p["c"]
        elif kind == "Upscale":
            k, out = p["kernel"], p["out"]
            if p["separable"]:
                layers += [nn.Conv2d(c, c, k, 1, k // 2, groups=c), nn.Conv2d(c, 4 * out, 1)]
            else:
                layers.append(nn.Conv2d(c, 4 * out, k, 1, k // 2))
            layers += [nn.PixelShuffle(2), act(p["act"])]
            c = out
    return nn.Sequential(*layers)


def layers_flat_size(layers, net):
    x = torch.zeros(1, *net["input"]["Chw"]) if "Chw" in net["input"] else torch.zeros(1, net["input"]["Flat"])
    with torch.no_grad():
        for l in layers:
            x = l(x)
    return x.reshape(1, -1).shape[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="timed rounds; the best is printed")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true", help="fp16 autocast + GradScaler (CUDA)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = json.load(open(args.spec))
    encoder = build(spec["encoder"])
    encoder = encoder.to(dev)
    decoders = [build(spec["decoder"]).to(dev), build(spec["decoder"]).to(dev)]
    params = list(encoder.parameters()) + [p for d in decoders for p in d.parameters()]
    opt = torch.optim.Adam(params, lr=5e-4, betas=(0.5, 0.999))
    s = spec["size"]
    data = [(torch.rand(args.batch, 3, s, s, device=dev), torch.rand(args.batch, 3, s, s, device=dev))
            for _ in range(2)]
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp)

    def step():
        opt.zero_grad()
        loss = 0
        for p in range(2):
            with torch.autocast("cuda", dtype=torch.float16, enabled=args.amp):
                out = decoders[p](encoder(data[p][0]))
            loss = loss + (out[:, :3].float() - data[p][1]).abs().mean()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        # Like the Rust trainer, read the loss back every step (its logging does).
        return loss.item()

    step()  # warm-up
    best = float("inf")
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        best = min(best, (time.perf_counter() - start) / args.steps * 1000)
    ms = best
    print(f"preset={spec['preset']} batch={args.batch} threads={args.threads} ms_per_step={ms:.1f}")


if __name__ == "__main__":
    main()
