#!/usr/bin/env python3
"""The outside referee of docs/fidelity.md (point 7 of the study): the authors' released code trains vanilla and
ANT-UW on MNIST digits under its own recipe; `dfn evaluate` scores their samples (bench/referee/run.sh drives both).

The released code is imported from a clone of gohyojun15/ANT_diffusion, never copied: the DiT
(models/DiT/models.py), the diffusion and its loss (diffusion/: improved-diffusion with learned variances, MSE plus the
variational-bound term), uncertainty weighting (mtl_library/uw.py), and the equal timestep clusters with their
per-cluster timestep draw (util/uw_util.py). The loop below follows train_ant_single_gpu.py's `uw` branch: the batch
split into k equal blocks, one per cluster, each block's mean loss / k passed through UW and summed. The released code
has no vanilla script; vanilla here is the DiT loop it starts from: timesteps uniform on [0, 1000), the plain mean.

The released recipe, kept: DiT-S/2, the cosine schedule over 1,000 steps, AdamW at a constant 1e-4 without warm-up or
weight decay, UW's log-variances at 0.025 without weight decay, k = 5, no gradient clipping, EMA 0.9999 from step 0
(initialised to the weights), global batch 50, DDPM sampling over 250 respaced steps without clipping x0. Changed on
purpose, for these data: pixel space (16x16x1 digits in [-1, 1], where the paper encodes 256px images with a VAE),
unconditional (num_classes = 1: the models it is compared with are unconditional), no horizontal flip (a mirrored digit
is not a digit), no torch.compile, fp16 autocast only on CUDA.

Commands (every one prints JSON lines):
    referee.py real  --out OUT [--size 16 --held-out 2000 --split-seed 0]
        writes OUT/real/ (the held-out digits as PNGs, the reference for `dfn evaluate --real OUT/real`)
    referee.py train --ant DIR --out OUT --method vanilla|uw [--steps 48000 --sample-every 4000 --samples 1000 ...]
        trains in OUT/METHOD, resuming from its checkpoint.pt; at every --sample-every steps and at the end writes
        OUT/METHOD/samples-STEP/ (EMA model, DDPM-250). SIGINT or SIGTERM: checkpoints at the next step, exits 130.
"""
import argparse
import json
import math
import os
import signal
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import referee_data as data  # noqa: E402

if not hasattr(F, "scaled_dot_product_attention"):
    # PyTorch 1.13 (Debian's, used to test this script on the CPU) lacks the fused attention the released DiT calls;
    # this is its definition for the DiT's case (no mask, no dropout, no causal masking), written out.
    def _attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
        assert attn_mask is None and dropout_p == 0.0 and not is_causal
        return torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1]), dim=-1) @ v
    F.scaled_dot_product_attention = _attention


def released(ant):
    """The released modules, imported from the clone at `ant`."""
    if not os.path.isfile(os.path.join(ant, "train_ant_single_gpu.py")):
        data.bad_input(f"{ant} is not a clone of gohyojun15/ANT_diffusion (train_ant_single_gpu.py is missing)")
    sys.path.insert(0, os.path.abspath(ant))
    from diffusion import create_diffusion
    from models.DiT.models import DiT_models
    from mtl_library.uw import UncertaintyWeighting
    from util.uw_util import initialize_cluster, sample_t_batch
    return dict(create_diffusion=create_diffusion, models=DiT_models, uw=UncertaintyWeighting,
                clusters=initialize_cluster, sample_t=sample_t_batch)


class Interrupted(Exception):
    """SIGINT or SIGTERM during sampling: the checkpoint is already saved and a resumed run samples that step again."""


class Signals:
    """Ctrl-C and SIGTERM: training stops after its current step; sampling, which can take long, stops at once."""

    def __init__(self):
        self.stop, self.sampling = False, False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.handle)

    def handle(self, *_):
        self.stop = True
        if self.sampling:
            raise Interrupted()


def emit(record, log=None):
    line = json.dumps(record)
    print(line, flush=True)
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(line + "\n")


class Run:
    """One method's model, EMA, optimiser and data order, saved whole to checkpoint.pt and resumed from it."""

    def __init__(self, args, code, device):
        self.args, self.code, self.device = args, code, device
        self.model = code["models"][args.model](input_size=args.size, in_channels=1, num_classes=1).to(device)
        self.ema = code["models"][args.model](input_size=args.size, in_channels=1, num_classes=1).to(device)
        self.ema.load_state_dict(self.model.state_dict())  # the released update_ema(ema, model, decay=0)
        self.ema.requires_grad_(False).eval()
        groups = [{"params": self.model.parameters()}]
        self.uw = None
        if args.method == "uw":
            self.uw = code["uw"](num_task=args.clusters).to(device)
            groups.append({"params": self.uw.parameters(), "lr": 0.025, "weight_decay": 0.0})
        self.opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.0)
        self.scaler = torch.cuda.amp.GradScaler(enabled=device.type == "cuda")
        self.step, self.epoch, self.position = 0, 0, 0

    def recipe(self):
        """What a checkpoint must have been trained with to be resumed by these arguments."""
        a = self.args
        return dict(method=a.method, model=a.model, size=a.size, batch=a.batch, clusters=a.clusters, lr=a.lr, ema=a.ema,
                    seed=a.seed, split_seed=a.split_seed, held_out=a.held_out)

    def state(self):
        return dict(recipe=self.recipe(), model=self.model.state_dict(), ema=self.ema.state_dict(), opt=self.opt.state_dict(),
                    uw=self.uw.state_dict() if self.uw else None, scaler=self.scaler.state_dict(), step=self.step,
                    epoch=self.epoch, position=self.position, rng=torch.get_rng_state(),
                    cuda_rng=torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None)

    def save(self, path):
        torch.save(self.state(), path + ".tmp")
        os.replace(path + ".tmp", path)  # a kill during the save leaves the previous checkpoint whole

    def load(self, path):
        s = torch.load(path, map_location=self.device)
        changed = {k: (v, self.recipe()[k]) for k, v in s["recipe"].items() if self.recipe()[k] != v}
        if changed:
            data.bad_input(f"{path} was trained with other settings ({', '.join(f'{k}: {a} there, {b} now' for k, (a, b) in changed.items())}); "
                           "give the same ones or another --out")
        self.model.load_state_dict(s["model"])
        self.ema.load_state_dict(s["ema"])
        self.opt.load_state_dict(s["opt"])
        if self.uw:
            self.uw.load_state_dict(s["uw"])
        self.scaler.load_state_dict(s["scaler"])
        self.step, self.epoch, self.position = s["step"], s["epoch"], s["position"]
        torch.set_rng_state(s["rng"].cpu())
        if s["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(s["cuda_rng"])


def batches(run, train):
    """Batches of the training digits in a fresh order each epoch (the order a function of the seed and the epoch, so a
    resumed run draws the same batches), dropping the last partial batch as the released loader does."""
    b = run.args.batch
    while True:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(run.args.seed * 100003 + run.epoch))
        while run.position + b <= len(train):
            run.position += b  # before the yield: a checkpoint taken after this batch's step must not replay it
            yield train[order[run.position - b:run.position]]
        run.epoch, run.position = run.epoch + 1, 0


def loss_of(run, diffusion, x0):
    """The released objective: vanilla's plain mean, or UW over k equal blocks of the batch, one per cluster."""
    args, device = run.args, run.device
    y = torch.zeros(len(x0), dtype=torch.long, device=device)
    if args.method == "vanilla":
        t = torch.randint(0, diffusion.num_timesteps, (len(x0),), device=device)
        losses = diffusion.training_losses(run.model, x0, t, dict(y=y))["loss"]
        return losses.mean(), losses.mean()
    t = run.code["sample_t"](len(x0), run.clusters, device)
    losses = diffusion.training_losses(run.model, x0, t, dict(y=y))["loss"]
    total, size = 0, len(x0) // args.clusters
    for i in range(args.clusters):
        total = total + run.uw(losses[i * size:(i + 1) * size].mean() / args.clusters, i)
    return total, losses.mean()


@torch.no_grad()
def write_samples(run, step, folder, signals):
    """`--samples` images of the EMA model by DDPM over 250 respaced steps, as PNGs in `folder`. The global generator
    is seeded for the draw and restored after it, so sampling neither depends on nor disturbs training's random state."""
    if os.path.isdir(folder):
        return
    args, device = run.args, run.device
    sampler = run.code["create_diffusion"](str(args.sampling_steps))
    saved = torch.get_rng_state(), torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    torch.manual_seed(args.seed * 1_000_003 + step)
    started, parts = time.time(), []
    signals.sampling = True
    try:
        parts = sample(run, sampler)
    finally:
        signals.sampling = False
    data.write_pngs(torch.cat(parts), folder)
    torch.set_rng_state(saved[0])
    if saved[1] is not None:
        torch.cuda.set_rng_state_all(saved[1])
    return time.time() - started


def sample(run, sampler):
    """The EMA model's `--samples` images in [0, 1], by the released sampling loop, in batches of `--sample-batch`."""
    args, device, parts = run.args, run.device, []
    for first in range(0, args.samples, args.sample_batch):
        n = min(args.sample_batch, args.samples - first)
        y = torch.zeros(n, dtype=torch.long, device=device)
        noise = torch.randn(n, 1, args.size, args.size, device=device)
        x = sampler.p_sample_loop(run.ema.forward, noise.shape, noise, clip_denoised=False, model_kwargs=dict(y=y),
                                  device=device)
        parts.append(((x + 1) / 2).float().cpu())
    return parts


def train(args):
    code = released(args.ant)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.method == "uw" and args.batch % args.clusters:
        data.bad_input(f"--batch {args.batch} must be a multiple of --clusters {args.clusters} "
                         "(the released code draws batch / k timesteps per cluster)")
    folder = os.path.join(args.out, args.method)
    os.makedirs(folder, exist_ok=True)
    checkpoint, log = os.path.join(folder, "checkpoint.pt"), os.path.join(folder, "metrics.jsonl")
    torch.manual_seed(args.seed)
    run = Run(args, code, device)
    run.clusters = code["clusters"]("uniform", args.clusters, 1000)
    signals = Signals()
    try:
        return loop(args, run, checkpoint, log, signals)
    except Interrupted:
        emit(dict(event="stopped", step=run.step, note="during sampling; it is redone on resume"), log)
        return 130


def loop(args, run, checkpoint, log, signals):
    """Trains to --steps from the checkpoint, if any; samples at every --sample-every steps and at the end."""
    folder, device = os.path.dirname(checkpoint), run.device
    if os.path.exists(checkpoint):
        run.load(checkpoint)
        if run.step % args.sample_every == 0 or run.step == args.steps:  # a stop during sampling: sample again
            write_samples(run, run.step, os.path.join(folder, f"samples-{run.step:07d}"), signals)
    diffusion = run.code["create_diffusion"](timestep_respacing="")  # the released default: 1,000 steps, cosine
    train_set, _ = data.split(data.load_mnist(args.size), args.held_out, args.split_seed)
    emit(dict(event="start", method=args.method, step=run.step, device=str(device), torch=torch.__version__,
              parameters=sum(p.numel() for p in run.model.parameters()), train_images=len(train_set)), log)
    stream, started, running, counted = batches(run, train_set), time.time(), 0.0, 0
    while run.step < args.steps and not signals.stop:
        x0 = (next(stream) * 2 - 1).to(device)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            objective, plain = loss_of(run, diffusion, x0)
        value = plain.item()
        if not math.isfinite(value):  # a defect to explain, not to step over: the last checkpoint stays as it was
            raise SystemExit(f"referee: the loss is {value} at step {run.step + 1}")
        run.opt.zero_grad(set_to_none=True)
        run.scaler.scale(objective).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
        with torch.no_grad():  # the released update_ema, decay 0.9999 from step 0
            for e, p in zip(run.ema.parameters(), run.model.parameters()):
                e.mul_(args.ema).add_(p.detach(), alpha=1 - args.ema)
        run.step, running, counted = run.step + 1, running + value, counted + 1
        if run.step % args.log_every == 0 or run.step == args.steps:
            weights = (0.5 * torch.exp(-run.uw.loss_scale)).tolist() if run.uw else None
            emit(dict(step=run.step, loss=running / counted, uw_weights=weights,
                      seconds_per_step=(time.time() - started) / counted), log)
            started, running, counted = time.time(), 0.0, 0
        if run.step % args.sample_every == 0 or run.step == args.steps:
            saved_at = time.time()
            run.save(checkpoint)
            seconds = write_samples(run, run.step, os.path.join(folder, f"samples-{run.step:07d}"), signals)
            emit(dict(event="samples", step=run.step, count=args.samples, seconds=seconds), log)
            started += time.time() - saved_at  # the log's seconds per step count training only
    run.save(checkpoint)
    emit(dict(event="stopped" if signals.stop else "done", step=run.step), log)
    return 130 if signals.stop else 0


def real(args):
    _, held_out = data.split(data.load_mnist(args.size), args.held_out, args.split_seed)
    folder = os.path.join(args.out, "real")
    if not os.path.isdir(folder):
        data.write_pngs(held_out, folder)
    emit(dict(event="real", folder=folder, count=len(held_out), size=args.size))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["real", "train"])
    p.add_argument("--ant", help="a clone of gohyojun15/ANT_diffusion (train needs it)")
    p.add_argument("--out", required=True)
    p.add_argument("--method", choices=["vanilla", "uw"])
    p.add_argument("--model", default="DiT-S/2", help="a name of the released DiT_models (DiT-S/2 is the paper's small one)")
    p.add_argument("--size", type=int, default=16, help="digit size (16: the quick profile's)")
    p.add_argument("--held-out", type=int, default=2000)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=48000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--clusters", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--ema", type=float, default=0.9999)
    p.add_argument("--sample-every", type=int, default=4000)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--sample-batch", type=int, default=500)
    p.add_argument("--sampling-steps", type=int, default=250)
    p.add_argument("--log-every", type=int, default=500)
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    args = p.parse_args()
    if args.command == "train" and not (args.method and args.ant):
        p.error("train needs --method vanilla or uw, and --ant")
    return real(args) if args.command == "real" else train(args)


if __name__ == "__main__":
    sys.exit(main())
