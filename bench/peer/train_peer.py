#!/usr/bin/env python3
"""The PyTorch peer of `dfn bench throughput`: our training step, in plain PyTorch, on the same network and weights.

It trains the reference network of unet_reference.py (diffusers' UNet2DModel, built from the config.json that
`dfn export --format diffusers` writes, loaded with our weights) exactly as src/Api.CSharp/Training/Trainer.Loop.cs
does with the vanilla weighting (docs/benchmarks.md, "PyTorch peer"):
  - synthetic images uniform in [-1, 1], max(2B, 128) of them, drawn in a fresh random order each epoch;
  - timesteps uniform on [0, T), eps ~ N(0, I), x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, with abar from the
    export's scheduler_config.json (computed in float64, as src/Core.FSharp/Schedule.fs does);
  - loss: per-sample mean squared error on eps, then the batch mean; the plain mean is read each step, as ours reads
    it for its divergence guard;
  - AdamW (TorchSharp's defaults, which the trainer uses: betas 0.9/0.999, eps 1e-8), learning rate with linear
    warm-up, gradient clipping of the global L2 norm (the norm read each step, as ours checks it is finite);
  - EMA of every state_dict tensor, ema = d ema + (1 - d) w, d = min(decay, (1 + t) / (10 + t)) with warm-up.
Threads: torch.set_num_threads(N). OpenMP: OMP_WAIT_POLICY=PASSIVE with GOMP_SPINCOUNT=1000 unless the environment
sets either (set here, before torch loads, as ours are set before libtorch loads: src/Api.CSharp/Backend/NativeThreading.cs).

Command line (every run prints JSON lines on stdout):
    python3 bench/peer/train_peer.py --weights DIR [--batch 64 --threads 1 --warmup 2 --steps 5]
        warms up, times the steps, prints {img_per_s, step_seconds, threads, batch, torch_version, ...}
    python3 bench/peer/train_peer.py --weights DIR --check FILE [--tol 1e-5]
        FILE: a torch.save dict {x, t, y} with our output y = net(x, t) of the network in DIR; passes (exit 0) when
        max|peer(x, t) - y| <= tol * max(1, max|y|), exit 1 otherwise
    python3 bench/peer/train_peer.py --weights DIR --serve [--batch ... --threads ... --warmup ...]
        warms up, prints {"ready": true, ...}, then for each line "K" on stdin times K steps and prints the figures
        (how `dfn bench throughput --peer` drives it: process start-up and warm-up stay outside the timed rounds)
    python3 bench/peer/train_peer.py --weights DIR --replay FILE --out OUT [--lr ... --clip ...]
        one step on the batch in FILE (torch.save dict {x0, t, noise}), then torch.save of the weights and their EMA
        to OUT: how a test shows that this step and ours give the same weights from the same batch
"""
import os

if not os.environ.get("OMP_WAIT_POLICY") and not os.environ.get("GOMP_SPINCOUNT"):
    os.environ.update(OMP_WAIT_POLICY="PASSIVE", GOMP_SPINCOUNT="1000")

import argparse  # noqa: E402 (torch must load after the OpenMP variables are set)
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import unet_reference as ref  # noqa: E402


def alphas_cumprod(folder):
    """abar_t of the export's scheduler_config.json (DDPMScheduler's linear or scaled_linear betas, or trained_betas)."""
    with open(os.path.join(folder, "scheduler_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    if cfg.get("prediction_type", "epsilon") != "epsilon":
        raise ValueError(f"prediction_type {cfg['prediction_type']!r}: the peer trains eps-prediction only")
    steps, start, end = cfg.get("num_train_timesteps", 1000), cfg.get("beta_start", 1e-4), cfg.get("beta_end", 0.02)
    schedule = cfg.get("beta_schedule", "linear")
    if cfg.get("trained_betas"):
        betas = torch.tensor(cfg["trained_betas"], dtype=torch.float64)
    elif schedule == "linear":
        betas = torch.linspace(start, end, steps, dtype=torch.float64)
    elif schedule == "scaled_linear":
        betas = torch.linspace(start ** 0.5, end ** 0.5, steps, dtype=torch.float64) ** 2
    else:
        raise ValueError(f"beta_schedule {schedule!r} is not supported by the peer (linear, scaled_linear)")
    return torch.cumprod(1.0 - betas, dim=0)


class PeerTrainer:
    """The network, its AdamW optimiser and EMA, the synthetic data and the schedule; `step()` is one training step."""

    def __init__(self, weights, batch, lr=2e-4, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, clip=1.0,
                 lr_warmup=0, ema_decay=0.999, ema_warmup=True, seed=0):
        torch.manual_seed(seed)
        self.model = ref.load_weights(ref.build(weights), weights).train()
        cfg = ref.read_config(weights)
        self.params = [p for p in self.model.parameters()]
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.live = list(self.model.state_dict().values())
        self.ema = [t.detach().clone() for t in self.live]
        self.batch, self.lr, self.clip, self.lr_warmup = batch, lr, clip, lr_warmup
        self.ema_decay, self.ema_warmup = ema_decay, ema_warmup
        size, channels = cfg.get("sample_size", 32), cfg["in_channels"]
        self.images = torch.rand(max(2 * batch, 128), channels, size, size) * 2 - 1
        abar = alphas_cumprod(weights)
        self.timesteps = abar.shape[0]
        self.sqrt_abar = abar.sqrt().float()
        self.sqrt_one_minus_abar = (1.0 - abar).sqrt().float()
        self.order, self.position, self.steps_done = torch.randperm(self.images.shape[0]), 0, 0

    def next_batch(self):
        """The next B images of the current epoch's random order (a new order each epoch)."""
        n, picked, count = self.images.shape[0], [], 0
        while count < self.batch:
            if self.position == n:
                self.order, self.position = torch.randperm(n), 0
            take = min(self.batch - count, n - self.position)
            picked.append(self.order[self.position:self.position + take])
            self.position += take
            count += take
        return self.images.index_select(0, torch.cat(picked))

    def step(self, batch=None):
        """One step, on `batch` (x0, t, noise) when given; returns the batch's plain mean loss."""
        if batch is None:
            x0 = self.next_batch()
            t = torch.randint(0, self.timesteps, (self.batch,), dtype=torch.int64)
            noise = torch.randn_like(x0)
        else:
            x0, t, noise = batch
        self.optimizer.zero_grad()
        xt = self.sqrt_abar[t].view(-1, 1, 1, 1) * x0 + self.sqrt_one_minus_abar[t].view(-1, 1, 1, 1) * noise
        per_sample = (self.model(xt, t) - noise).square().flatten(1).mean(dim=1)
        mean_loss = per_sample.detach().mean().item()
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"the loss is {mean_loss}")
        per_sample.mean().backward()
        clip = self.clip if self.clip is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.params, clip).item()
        if not math.isfinite(norm):
            raise FloatingPointError(f"the gradient norm is {norm}")
        warm = min(1.0, (self.steps_done + 1.0) / self.lr_warmup) if self.lr_warmup > 0 else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * warm
        self.optimizer.step()
        decay = min(self.ema_decay, (1.0 + self.steps_done) / (10.0 + self.steps_done)) if self.ema_warmup else self.ema_decay
        with torch.no_grad():
            for e, w in zip(self.ema, self.live):
                e.mul_(decay).add_(w, alpha=1.0 - decay)
        self.steps_done += 1
        return mean_loss

    def timed(self, steps):
        """Seconds for `steps` steps, and the last step's loss."""
        started = time.perf_counter()
        loss = float("nan")
        for _ in range(steps):
            loss = self.step()
        return time.perf_counter() - started, loss


def figures(trainer, steps, seconds, loss, threads):
    return {"img_per_s": trainer.batch * steps / seconds, "step_seconds": seconds / steps, "steps": steps,
            "seconds": seconds, "loss": loss, "threads": threads, "batch": trainer.batch,
            "torch_version": torch.__version__, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT")}


def check(weights, file, tol):
    """Our output against the peer's on the fixed input stored in `file`; returns (report, passed)."""
    stored = torch.load(file, map_location="cpu")
    model = ref.load_weights(ref.build(weights), weights)
    with torch.no_grad():
        y = model(stored["x"].float(), stored["t"].long())
    expected = stored["y"].float()
    diff = float((y - expected).abs().max()) if y.shape == expected.shape else math.inf
    largest = float(expected.abs().max())
    bound = tol * max(1.0, largest)
    report = {"check": True, "max_abs_diff": diff, "max_abs_output": largest, "tol": tol, "bound": bound,
              "passed": diff <= bound, "shape": list(y.shape), "torch_version": torch.__version__}
    return report, diff <= bound


def replay(trainer, file, out):
    """One step on the batch stored in `file` (torch.save of {x0, t, noise}); writes the weights and their EMA to `out`
    as one torch.save dict with keys "live.<name>" and "ema.<name>" (diffusers' names); returns the step's loss."""
    stored = torch.load(file, map_location="cpu")
    loss = trainer.step((stored["x0"].float(), stored["t"].long(), stored["noise"].float()))
    names = list(trainer.model.state_dict().keys())
    weights = {f"live.{n}": w.detach().clone() for n, w in zip(names, trainer.live)}
    weights.update({f"ema.{n}": e.clone() for n, e in zip(names, trainer.ema)})
    torch.save(weights, out)
    return {"replay": True, "loss": loss, "tensors": len(weights), "torch_version": torch.__version__}


def serve(trainer, threads):
    """Reads a step count per line from stdin and answers each with one JSON line; ends at EOF or "quit"."""
    print(json.dumps({"ready": True, "threads": threads, "batch": trainer.batch, "torch_version": torch.__version__,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                      "gomp_spincount": os.environ.get("GOMP_SPINCOUNT")}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if not command:
            continue
        steps = int(command)
        seconds, loss = trainer.timed(steps)
        print(json.dumps(figures(trainer, steps, seconds, loss, threads)), flush=True)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="export folder: config.json, scheduler_config.json, weights")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--clip", type=float, default=1.0, help="max global gradient L2 norm (0: none)")
    parser.add_argument("--lr-warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--no-ema-warmup", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", metavar="FILE", help="compare the forward output with ours (torch.save of {x, t, y})")
    parser.add_argument("--tol", type=float, default=1e-5, help="--check passes when max|diff| <= tol * max(1, max|y|)")
    parser.add_argument("--serve", action="store_true", help="time the step counts read from stdin, one per line")
    parser.add_argument("--replay", metavar="FILE", help="one step on the batch in FILE (torch.save of {x0, t, noise}), no warm-up")
    parser.add_argument("--out", help="with --replay: where the weights and EMA after the step are written")
    args = parser.parse_args(argv)
    if args.replay and not args.out:
        parser.error("--replay needs --out")
    if args.batch < 1 or args.threads < 1 or args.warmup < 0 or args.steps < 1:
        parser.error("--batch, --threads and --steps must be positive, --warmup not negative")
    return args


def main(argv=None):
    args = parse(argv)
    torch.set_num_threads(args.threads)
    if args.check:
        report, passed = check(args.weights, args.check, args.tol)
        print(json.dumps(report), flush=True)
        return 0 if passed else 1
    trainer = PeerTrainer(args.weights, args.batch, lr=args.lr, weight_decay=args.weight_decay,
                          clip=args.clip if args.clip > 0 else None, lr_warmup=args.lr_warmup,
                          ema_decay=args.ema_decay, ema_warmup=not args.no_ema_warmup, seed=args.seed)
    if args.replay:
        print(json.dumps(replay(trainer, args.replay, args.out)), flush=True)
        return 0
    trainer.timed(args.warmup)
    if args.serve:
        serve(trainer, args.threads)
        return 0
    seconds, loss = trainer.timed(args.steps)
    print(json.dumps(figures(trainer, args.steps, seconds, loss, args.threads)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
