#!/usr/bin/env python3
"""A plain-PyTorch reference of the unconditional DiT that `dfn export --format pytorch` writes.

Written from the DiT paper (Peebles and Xie 2023, section 3.2: patchify, fixed 2-D sine-cosine positions, adaLN-Zero
blocks, a final adaLN layer and a linear decoder) with no import of other DiT code. Submodule names follow the
paper's released code (x_embedder.proj, t_embedder.mlp.0/2, blocks.N.attn.qkv, blocks.N.adaLN_modulation.1,
final_layer.linear, ...), so `load_state_dict(strict=True)` on a dfn export checks every key and shape. The class
embedding is absent: dfn's DiT is unconditional. The positions are recomputed here and compared with the exported
buffer, so an export cannot pass by carrying its own mistake.

Command line:
    python3 bench/peer/dit_reference.py compare --weights dit.pt --config '{"ImageChannels":1,...}' \
        --input x.npy --timesteps t.npy --expected y.npy [--tol 1e-5]
    python3 bench/peer/dit_reference.py keys --config '{...}'
    python3 bench/peer/dit_reference.py time --config '{...}' [--batch 64] [--steps 10] [--threads 1]
        (seconds per training step: forward, eps-MSE, backward, AdamW; the speed peer of dfn bench throughput)
"""
import argparse
import json
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def sincos_positions(grid, dim):
    """[grid*grid, dim]: per token (row-major), the column's encoding then the row's, each sin over k then cos over k."""
    quarter = dim // 4
    omega = 10000.0 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")

    def encode(pos):
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(cols), encode(rows)], dim=1).float()


def timestep_features(t, dim=256, max_period=10000.0):
    """cos then sin of t * max_period^(-k/half), k < half (the paper's code's order)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):
    def __init__(self, channels, hidden, patch):
        super().__init__()
        self.proj = nn.Conv2d(channels, hidden, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        return self.mlp(timestep_features(t))


class Attention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, x):
        b, n, h = x.shape
        d = h // self.heads
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, h))


class Mlp(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.fc1 = nn.Linear(hidden, inner)
        self.fc2 = nn.Linear(inner, hidden)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, hidden, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden, hidden * mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x, c):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1))
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    def __init__(self, hidden, patch, channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch * patch * channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.channels, self.patch = config["ImageChannels"], config["PatchSize"]
        hidden, grid = config["HiddenSize"], config["ImageSize"] // config["PatchSize"]
        self.x_embedder = PatchEmbed(self.channels, hidden, self.patch)
        self.t_embedder = TimestepEmbedder(hidden)
        self.register_buffer("pos_embed", sincos_positions(grid, hidden).unsqueeze(0))
        self.blocks = nn.ModuleList([Block(hidden, config["Heads"], config["MlpRatio"]) for _ in range(config["Depth"])])
        self.final_layer = FinalLayer(hidden, self.patch, self.channels)

    def unpatchify(self, x):
        b, n, _ = x.shape
        g, p, c = int(round(n ** 0.5)), self.patch, self.channels
        x = x.reshape(b, g, g, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(b, c, g * p, g * p)

    def forward(self, x, t):
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t)
        for block in self.blocks:
            h = block(h, c)
        return self.unpatchify(self.final_layer(h, c))


def time_steps(model, config, batch, steps):
    """Median seconds of a training step on random data: what dfn bench throughput times, without EMA and data."""
    import time
    torch.manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    size, channels = config["ImageSize"], config["ImageChannels"]
    seconds = []
    for step in range(steps + 2):
        x, noise = torch.randn(batch, channels, size, size), torch.randn(batch, channels, size, size)
        t = torch.randint(0, 1000, (batch,))
        start = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x, t), noise)
        loss.backward()
        optimiser.step()
        if step >= 2:
            seconds.append(time.perf_counter() - start)
    seconds.sort()
    print(json.dumps({"seconds_per_step": seconds[len(seconds) // 2], "images_per_second": batch / seconds[len(seconds) // 2],
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("compare", "keys", "time"):
        p = sub.add_parser(name)
        p.add_argument("--config", required=True, help="dfn's DiT configuration as JSON (a checkpoint header's model)")
        if name == "compare":
            p.add_argument("--weights", required=True, help="the torch.save state_dict dfn export wrote")
            p.add_argument("--input", required=True, help="x as .npy, float32 [B, C, H, W]")
            p.add_argument("--timesteps", required=True, help="t as .npy, integers [B]")
            p.add_argument("--expected", required=True, help="dfn's output, .npy")
            p.add_argument("--tol", type=float, default=1e-5, help="pass when max|y - expected| <= tol * max(1, max|expected|)")
        if name == "time":
            p.add_argument("--batch", type=int, default=64)
            p.add_argument("--steps", type=int, default=10, help="timed steps, after 2 untimed ones")
            p.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(getattr(args, "threads", 1))
    model = DiT(json.loads(args.config))
    if args.command == "keys":
        for key, value in model.state_dict().items():
            print(key, list(value.shape))
        return 0
    if args.command == "time":
        return time_steps(model, json.loads(args.config), args.batch, args.steps)
    own_positions = model.pos_embed.clone()
    model.load_state_dict({k: v.float() for k, v in torch.load(args.weights, map_location="cpu").items()}, strict=True)
    model.eval()
    positions_diff = float((model.pos_embed - own_positions).abs().max())
    with torch.no_grad():
        y = model(torch.from_numpy(np.load(args.input)).float(), torch.from_numpy(np.load(args.timesteps)).long()).numpy()
    expected = np.load(args.expected)
    diff = float(np.max(np.abs(y - expected))) if y.shape == expected.shape else float("inf")
    scale = max(1.0, float(np.max(np.abs(expected))))
    print(json.dumps({"max_abs_diff": diff, "max_abs_expected": float(np.max(np.abs(expected))), "positions_diff": positions_diff,
                      "bound": args.tol * scale, "shape": list(y.shape)}))
    return 0 if diff <= args.tol * scale and positions_diff <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
