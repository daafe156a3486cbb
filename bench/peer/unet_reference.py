#!/usr/bin/env python3
"""A plain-PyTorch reference of the UNet that `dfn export` writes for diffusers.

The module is written from scratch (no diffusers import) to compute what diffusers' `UNet2DModel` computes for the
configurations dfn exports: positional timestep features (flip_sin_to_cos, freq_shift 0), a two-layer SiLU time MLP,
DownBlock2D / AttnDownBlock2D levels, UNetMidBlock2D (resnet, attention, resnet), the mirrored up blocks, GroupNorm,
SiLU and the output convolution. Submodule names follow UNet2DModel's, so `load_state_dict(strict=True)` on a dfn
export checks every key and shape. Safetensors files are read with numpy (no safetensors package needed).

Library use (also the speed peer's model):
    import unet_reference as ref
    model = ref.build("export/config.json")          # or a dict
    ref.load_weights(model, "export")                # folder, .safetensors, or a torch.save state_dict
    eps = model(x, t)

Command line:
    python3 bench/peer/unet_reference.py run --weights DIR --input x.npy --timesteps t.npy --output y.npy
    python3 bench/peer/unet_reference.py compare --weights DIR --input x.npy --timesteps t.npy --expected y.npy [--tol 1e-5]
    python3 bench/peer/unet_reference.py keys --weights DIR
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = {
    "time_embedding_type": "positional", "flip_sin_to_cos": True, "freq_shift": 0, "center_input_sample": False,
    "mid_block_type": "UNetMidBlock2D", "add_attention": True, "mid_block_scale_factor": 1, "downsample_padding": 1,
    "downsample_type": "conv", "upsample_type": "conv", "resnet_time_scale_shift": "default",
    "class_embed_type": None, "num_class_embeds": None,
}
DEFAULTS = {
    "in_channels": 3, "out_channels": 3, "block_out_channels": [224, 448, 672, 896], "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": 8, "norm_num_groups": 32, "norm_eps": 1e-5, "dropout": 0.0, "act_fn": "silu",
    "time_embedding_dim": None, "attn_norm_num_groups": None, **SUPPORTED,
}


class ResnetBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv, plus the projected time embedding; GroupNorm, SiLU, dropout, 3x3 conv; skip."""

    def __init__(self, cin, cout, temb, groups, eps, dropout):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class Attention(nn.Module):
    """Self-attention over pixels: GroupNorm, linear q/k/v, softmax(q k^T / sqrt(d)) v per head, linear out, residual."""

    def __init__(self, channels, head_dim, groups, eps):
        super().__init__()
        self.heads, self.head_dim = channels // head_dim, head_dim
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.group_norm(x).view(b, c, h * w).transpose(1, 2)

        def heads(t):
            return t.view(b, -1, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.to_q(tokens)), heads(self.to_k(tokens)), heads(self.to_v(tokens))
        weights = torch.softmax(q @ k.transpose(-1, -2) * self.head_dim ** -0.5, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, -1, self.heads * self.head_dim)
        out = self.to_out[1](self.to_out[0](out))
        return out.transpose(-1, -2).reshape(b, c, h, w) + x


class Resample(nn.Module):
    """Downsample2D (stride-2 3x3 conv, padding 1) or Upsample2D (nearest x2, then 3x3 conv); the conv is named conv."""

    def __init__(self, channels, down):
        super().__init__()
        self.down = down
        self.conv = nn.Conv2d(channels, channels, 3, stride=2 if down else 1, padding=1)

    def forward(self, x):
        return self.conv(x if self.down else F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One down or up block: resnets, attention after each when `attention`, and an optional resampler."""

    def __init__(self, resnets, attention, resampler, resampler_name):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        self.attentions = nn.ModuleList(attention) if attention else None
        self.resampler_name = resampler_name if resampler is not None else None
        if resampler is not None:
            setattr(self, resampler_name, nn.ModuleList([resampler]))

    @property
    def resampler(self):
        return getattr(self, self.resampler_name)[0] if self.resampler_name else None

    def blocks(self):
        return zip(self.resnets, self.attentions if self.attentions is not None else [None] * len(self.resnets))


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        widths, layers = cfg["block_out_channels"], cfg["layers_per_block"]
        groups, eps, dropout = cfg["norm_num_groups"], cfg["norm_eps"], cfg["dropout"]
        head = cfg["attention_head_dim"]
        temb = widths[0] * 4
        self.base = widths[0]
        self.conv_in = nn.Conv2d(cfg["in_channels"], widths[0], 3, padding=1)
        self.time_embedding = nn.Module()
        self.time_embedding.linear_1 = nn.Linear(widths[0], temb)
        self.time_embedding.linear_2 = nn.Linear(temb, temb)

        def attention(width):
            return Attention(width, head if head is not None else width, groups, eps)

        down, out = [], widths[0]
        for i, kind in enumerate(cfg["down_block_types"]):
            cin, out = out, widths[i]
            resnets = [ResnetBlock(cin if j == 0 else out, out, temb, groups, eps, dropout) for j in range(layers)]
            attn = [attention(out) for _ in range(layers)] if kind == "AttnDownBlock2D" else None
            last = i == len(widths) - 1
            down.append(Level(resnets, attn, None if last else Resample(out, True), "downsamplers"))
        self.down_blocks = nn.ModuleList(down)

        self.mid_block = nn.Module()
        self.mid_block.resnets = nn.ModuleList([ResnetBlock(widths[-1], widths[-1], temb, groups, eps, dropout) for _ in range(2)])
        self.mid_block.attentions = nn.ModuleList([attention(widths[-1])])

        up, reversed_widths = [], list(reversed(widths))
        out = reversed_widths[0]
        for i, kind in enumerate(cfg["up_block_types"]):
            prev, out = out, reversed_widths[i]
            skip_in = reversed_widths[min(i + 1, len(widths) - 1)]
            resnets = [ResnetBlock((prev if j == 0 else out) + (skip_in if j == layers else out), out, temb, groups, eps, dropout)
                       for j in range(layers + 1)]
            attn = [attention(out) for _ in range(layers + 1)] if kind == "AttnUpBlock2D" else None
            last = i == len(widths) - 1
            up.append(Level(resnets, attn, None if last else Resample(out, False), "upsamplers"))
        self.up_blocks = nn.ModuleList(up)
        self.conv_norm_out = nn.GroupNorm(groups, widths[0], eps=eps)
        self.conv_out = nn.Conv2d(widths[0], cfg["out_channels"], 3, padding=1)

    def time_features(self, t):
        """[cos(t f), sin(t f)], f_i = 10000^(-i / half): flip_sin_to_cos with freq_shift 0."""
        half = self.base // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t.float()[:, None] * freqs[None, :]
        features = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return F.pad(features, (0, 1)) if self.base % 2 == 1 else features

    def forward(self, x, t):
        t = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
        # The features are computed in float32 and cast to the weights' dtype, as UNet2DModel.forward does.
        features = self.time_features(t).to(self.time_embedding.linear_1.weight.dtype)
        emb = self.time_embedding.linear_2(F.silu(self.time_embedding.linear_1(features)))
        h = self.conv_in(x)
        skips = [h]
        for level in self.down_blocks:
            for resnet, attn in level.blocks():
                h = resnet(h, emb)
                h = attn(h) if attn is not None else h
                skips.append(h)
            if level.resampler is not None:
                h = level.resampler(h)
                skips.append(h)
        h = self.mid_block.resnets[0](h, emb)
        h = self.mid_block.attentions[0](h)
        h = self.mid_block.resnets[1](h, emb)
        for level in self.up_blocks:
            for resnet, attn in level.blocks():
                h = resnet(torch.cat([h, skips.pop()], dim=1), emb)
                h = attn(h) if attn is not None else h
            if level.resampler is not None:
                h = level.resampler(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def read_config(config):
    """The config dict with diffusers' defaults for absent fields; refuses what this reference does not implement."""
    if not isinstance(config, dict):
        path = os.path.join(config, "config.json") if os.path.isdir(config) else config
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    cfg = {**DEFAULTS, **config}
    for name, value in SUPPORTED.items():
        if cfg[name] != value:
            raise ValueError(f"config field {name} = {cfg[name]!r} is not supported (expected {value!r})")
    if cfg["act_fn"] not in ("silu", "swish") or cfg["in_channels"] != cfg["out_channels"]:
        raise ValueError("unsupported act_fn or out_channels")
    if cfg["time_embedding_dim"] not in (None, cfg["block_out_channels"][0] * 4):
        raise ValueError("time_embedding_dim must be null or 4 * block_out_channels[0]")
    if cfg["attn_norm_num_groups"] not in (None, cfg["norm_num_groups"]):
        raise ValueError("attn_norm_num_groups must be null or norm_num_groups")
    return cfg


def build(config_json):
    """The reference network for a UNet2DModel config.json (a path, a folder holding it, or a dict)."""
    return UNet(read_config(config_json))


SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    """A state_dict from a safetensors file, parsed by hand (8-byte header length, JSON header, raw data)."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = memoryview(data)[8 + length:]
    state = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"])
        state[key] = torch.from_numpy(array.copy()).float()
    return state


def read_state_dict(weights):
    """A state_dict from a folder (diffusion_pytorch_model.safetensors or .bin), a .safetensors file, or torch.save file."""
    if os.path.isdir(weights):
        for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
            if os.path.exists(os.path.join(weights, name)):
                return read_state_dict(os.path.join(weights, name))
        raise FileNotFoundError(f"no weights in {weights}")
    if weights.endswith(".safetensors"):
        return read_safetensors(weights)
    return {k: v.float() for k, v in torch.load(weights, map_location="cpu").items()}


def load_weights(model, weights):
    """Loads weights strictly: a missing, unexpected or mis-shaped key raises."""
    model.load_state_dict(read_state_dict(weights), strict=True)
    return model.eval()


def run(weights, x, t):
    model = load_weights(build(weights if os.path.isdir(weights) else os.path.dirname(os.path.abspath(weights))), weights)
    with torch.no_grad():
        return model(torch.from_numpy(x).float(), torch.from_numpy(t).long()).numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "compare", "keys"):
        p = sub.add_parser(name)
        p.add_argument("--weights", required=True, help="export folder (config.json + weights) or a weights file beside config.json")
        if name != "keys":
            p.add_argument("--input", required=True, help="x as .npy, float32 [B, C, H, W]")
            p.add_argument("--timesteps", required=True, help="t as .npy, integers [B]")
        if name == "run":
            p.add_argument("--output", required=True)
        if name == "compare":
            p.add_argument("--expected", required=True, help="the output to compare against, .npy")
            p.add_argument("--tol", type=float, default=1e-5,
                           help="pass when max|y - expected| <= tol * max(1, max|expected|) (float32 sums differ in order)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "keys":
        for key, value in build(args.weights).state_dict().items():
            print(key, list(value.shape))
        return 0
    y = run(args.weights, np.load(args.input), np.load(args.timesteps))
    if args.command == "run":
        np.save(args.output, y)
        return 0
    expected = np.load(args.expected)
    diff = float(np.max(np.abs(y - expected))) if y.shape == expected.shape else float("inf")
    scale = max(1.0, float(np.max(np.abs(expected))))
    print(json.dumps({"max_abs_diff": diff, "max_abs_expected": float(np.max(np.abs(expected))), "tol": args.tol,
                      "bound": args.tol * scale, "shape": list(y.shape)}))
    return 0 if diff <= args.tol * scale else 1


if __name__ == "__main__":
    sys.exit(main())
