"""Data-efficient DCGAN training on one class: the step, the EMA, and the loop.

The whole class sits on the device as a uint8 tensor; every batch, flip, augmentation and
latent is drawn there from one torch.Generator, so a run is a pure function of (data, config,
seed) and a checkpoint that stores that generator's state resumes bit-exactly. The loop knows
nothing about files: the caller passes `snapshot` and `log` callbacks (see pipelines.gan_run).
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gan.conventions import PRECISIONS, autocast, to_model_range, to_uint8
from gan.diffaugment import POLICIES, diff_augment, random_dihedral
from gan.networks import Architecture, build
from gan.progress import progress_bar

LOSSES = ("ns", "hinge")


@dataclass
class TrainConfig:
    """Hyper-parameters of one GAN run. Defaults: DCGAN's optimiser, DiffAugment's policy."""

    kimg: float = 100.0  # training length: thousands of real images shown to D
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    diffaugment: tuple[str, ...] = POLICIES  # () switches DiffAugment off
    dihedral: bool = True  # random flips/90-degree turns of reals: lesions have no "up"
    ema_kimg: float = 10.0  # half-life of the generator EMA in kimg; 0 switches it off
    ema_rampup: float = 0.05  # EMA half-life <= this fraction of images seen so far
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast)
    loss: str = "ns"  # ns: non-saturating logistic (DCGAN) | hinge (SNGAN, BigGAN)
    r1_gamma: float = 0.0  # R1 penalty weight on real images; 0 switches it off
    r1_every: int = 16  # lazy R1 (StyleGAN2): every k steps, scaled by k
    freeze_d: int = 0  # FreezeD (Mo et al. 2020): lowest D blocks kept fixed when fine-tuning
    sampling: str = "uniform"  # uniform over images | balanced over classes (multi-class source)
    seed: int = 0
    snapshot_kimg: float = 10.0  # checkpoint + sample grid interval
    eval_kimg: float = 10.0  # FID/KID evaluation interval (when an evaluator is given)
    log_steps: int = 20  # metrics/NaN check interval, in optimiser steps

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        self.diffaugment = tuple(self.diffaugment)
        unknown = set(self.diffaugment) - set(POLICIES)
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {sorted(unknown)}; use {POLICIES}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use {list(PRECISIONS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; use {list(LOSSES)}")
        if self.sampling not in ("uniform", "balanced"):
            raise ValueError(f"unknown sampling {self.sampling!r}; use uniform or balanced")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GanState:
    """Everything that changes during training; checkpoints are exactly this plus configs."""

    arch: Architecture
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module | None
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    rng: torch.Generator
    nimg: int = 0
    step: int = 0
    seconds: float = 0.0  # wall time spent in training steps (not evaluation or snapshots)
    scalers: dict = field(default_factory=dict)  # GradScalers, fp16 only

    @property
    def sampler(self) -> nn.Module:
        """The network to draw samples from: the EMA generator when there is one."""
        return self.G_ema if self.G_ema is not None else self.G


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf; the last checkpoint on disk is the last good state."""


class NonFiniteSamples(ValueError):
    """A generator produced NaN/inf pixels (damaged or diverged weights)."""


def new_state(arch: Architecture, cfg: TrainConfig, device: torch.device) -> GanState:
    torch.manual_seed(cfg.seed)  # weight init
    # channels_last: oneDNN's fast convolution layout on CPUs, tensor-core friendly on GPUs
    G, D = (m.to(device, memory_format=torch.channels_last) for m in build(arch))
    D.freeze(cfg.freeze_d)
    G_ema = copy.deepcopy(G).requires_grad_(False) if cfg.ema_kimg > 0 else None
    rng = torch.Generator(device=device)
    rng.manual_seed(cfg.seed)
    scalers = {}
    if cfg.precision == "fp16":
        scalers = {k: torch.amp.GradScaler(device.type) for k in ("G", "D")}
    return GanState(
        arch=arch,
        G=G,
        D=D,
        G_ema=G_ema,
        opt_G=torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas),
        opt_D=torch.optim.Adam(
            [p for p in D.parameters() if p.requires_grad], lr=cfg.lr, betas=cfg.betas
        ),
        rng=rng,
        scalers=scalers,
    )


def _backward_step(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler) -> None:
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


def _d_losses(d_real: torch.Tensor, d_fake: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def _g_loss(d_gen: torch.Tensor, loss: str) -> torch.Tensor:
    return -d_gen.mean() if loss == "hinge" else F.softplus(-d_gen).mean()


def r1_penalty(D: nn.Module, real: torch.Tensor, cfg: TrainConfig, g: torch.Generator):
    """gamma/2 * E||grad_x D(aug(x))||^2 on reals, in fp32, through the augmentation as in
    StyleGAN2-ADA; lazy: applied every r1_every steps and scaled by r1_every."""
    x = real.detach().requires_grad_(True)
    out = D(diff_augment(x, cfg.diffaugment, g)).float()
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean() * (cfg.r1_gamma / 2) * cfg.r1_every


def train_step(
    state: GanState,
    images: torch.Tensor,
    cfg: TrainConfig,
    weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One D update and one G update; returns detached metrics. `weights` (one per image)
    makes the real batches a weighted draw, e.g. class-balanced for a multi-class source."""
    g, dev = state.rng, images.device
    n = cfg.batch_size
    if weights is None:
        idx = torch.randint(0, images.shape[0], (n,), device=dev, generator=g)
    else:
        idx = torch.multinomial(weights, n, replacement=True, generator=g)
    real = to_model_range(images[idx])
    if cfg.dihedral:
        real = random_dihedral(real, g)
    z = torch.randn(n, state.arch.nz, device=dev, generator=g)
    mixed = autocast(dev.type, cfg.precision)

    with mixed:
        fake = state.G(z)
        d_real = state.D(diff_augment(real, cfg.diffaugment, g)).float()
        d_fake = state.D(diff_augment(fake.detach(), cfg.diffaugment, g)).float()
        loss_D = _d_losses(d_real, d_fake, cfg.loss)
    if cfg.r1_gamma > 0 and state.step % cfg.r1_every == 0:
        loss_D = loss_D + r1_penalty(state.D, real, cfg, g)
    _backward_step(loss_D, state.opt_D, state.scalers.get("D"))

    with mixed:
        d_gen = state.D(diff_augment(fake, cfg.diffaugment, g)).float()
        loss_G = _g_loss(d_gen, cfg.loss)
    trainable_D = state.opt_D.param_groups[0]["params"]  # frozen (FreezeD) blocks stay frozen
    for p in trainable_D:  # G's update needs no D gradients
        p.requires_grad_(False)
    _backward_step(loss_G, state.opt_G, state.scalers.get("G"))
    for p in trainable_D:
        p.requires_grad_(True)

    state.nimg += n
    state.step += 1
    if state.G_ema is not None:
        update_ema(state.G_ema, state.G, cfg, state.nimg, n)
    return {
        "loss_D": loss_D.detach(),
        "loss_G": loss_G.detach(),
        "D_real": torch.sigmoid(d_real).mean().detach(),
        "D_fake": torch.sigmoid(d_fake).mean().detach(),
    }


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, cfg: TrainConfig, nimg: int, batch: int) -> None:
    """EMA with a half-life in images (StyleGAN2-ADA); ramped up so early weights fade fast."""
    half_life = cfg.ema_kimg * 1000
    if cfg.ema_rampup > 0:
        half_life = min(half_life, nimg * cfg.ema_rampup)
    beta = 0.5 ** (batch / max(half_life, 1e-8))
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


@contextlib.contextmanager
def _untouched_buffers(model: nn.Module) -> Iterator[None]:
    """Run a model in train mode (batch statistics) without leaving a trace in its buffers."""
    saved = [b.clone() for b in model.buffers()]
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        for b, s in zip(model.buffers(), saved):
            b.copy_(s)
        model.train(was_training)


@torch.no_grad()
def sample(
    G: nn.Module, z: torch.Tensor, batch_size: int = 256, precision: str = "fp32"
) -> torch.Tensor:
    """uint8 N×3×H×W images for latents z.

    DCGAN generators are sampled with batch statistics, as in the original: the EMA copy's
    running statistics belong to other weights. Batches of >= 64 keep that noise negligible.
    """
    out = []
    with _untouched_buffers(G), autocast(z.device.type, precision):
        for chunk in z.split(batch_size):
            x = G(chunk)
            if not torch.isfinite(x).all():  # would be black images, kept as if real samples
                raise NonFiniteSamples("the generator's output is not finite (NaN or inf)")
            out.append(to_uint8(x))
    return torch.cat(out)


def training_end(nimg: int, cfg: TrainConfig) -> int:
    """Where training from `nimg` stops: whole batches, so up to one batch past --kimg (the
    bar's end and the end the command reports agree)."""
    left = math.ceil(cfg.kimg * 1000) - nimg
    return nimg + max(math.ceil(left / cfg.batch_size), 0) * cfg.batch_size


def _next_boundary(nimg: int, every_kimg: float) -> int:
    every = max(int(every_kimg * 1000), 1)
    return (nimg // every + 1) * every


def train(
    state: GanState,
    images: torch.Tensor,
    cfg: TrainConfig,
    snapshot: Callable[[GanState], None],
    log: Callable[[dict], None],
    progress: bool = True,
    evaluate: Callable[[GanState], dict] | None = None,
    weights: torch.Tensor | None = None,
) -> GanState:
    """Train until cfg.kimg, calling snapshot() every cfg.snapshot_kimg and at the end, and
    evaluate() (if given) every cfg.eval_kimg and at the end, each followed by a snapshot.

    Ctrl-C finishes the current step, takes a snapshot and raises KeyboardInterrupt (a second
    Ctrl-C interrupts at once). Losses are checked before every snapshot: a NaN/inf raises
    TrainingDiverged without one, so the checkpoint on disk stays the last good state.
    """
    target = int(math.ceil(cfg.kimg * 1000))
    end = training_end(state.nimg, cfg)
    next_snap = _next_boundary(state.nimg, cfg.snapshot_kimg)
    next_eval = _next_boundary(state.nimg, cfg.eval_kimg) if evaluate else None
    shown: dict[str, str] = {}
    window = _Window()
    bar = progress_bar(
        total=end / 1000,
        desc="GAN",
        initial=state.nimg / 1000,
        unit="kimg",
        disable=not progress,
        bar_format="{l_bar}{bar}| {n:.4g}/{total:.4g} kimg [{elapsed}<{remaining}{postfix}]",
    )
    with bar, _deferred_interrupt() as interrupted:
        while state.nimg < target:
            t0 = time.perf_counter()
            window.add(train_step(state, images, cfg, weights))
            state.seconds += time.perf_counter() - t0
            stop = interrupted()
            done = state.nimg >= target
            due_eval = next_eval is not None and (state.nimg >= next_eval or done)
            snap = stop or due_eval or done or state.nimg >= next_snap
            if snap or state.step % cfg.log_steps == 0:
                row = window.flush(state, cfg.batch_size)
                log(row)
                shown |= {k: f"{row[k]:.3g}" for k in ("loss_D", "loss_G", "D_real", "D_fake")}
                shown["img/s"] = f"{row['img_s']:.0f}"
                bar.set_postfix(shown)
                bar.update(state.nimg / 1000 - bar.n)
            if due_eval:  # before the snapshot: every evaluated state has a checkpoint
                shown |= {k: f"{v:.4g}" for k, v in evaluate(state).items()}
                bar.set_postfix(shown)
                next_eval = _next_boundary(state.nimg, cfg.eval_kimg)
            if snap:
                snapshot(state)
                next_snap = _next_boundary(state.nimg, cfg.snapshot_kimg)
            if stop:
                raise KeyboardInterrupt
    return state


class _Window:
    """Metric sums since the last log row; kept as tensors so a GPU step never syncs."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps, self.t0 = 0, time.perf_counter()

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.steps += 1

    def flush(self, state: GanState, batch_size: int) -> dict:
        means = {k: v.item() / self.steps for k, v in self.sums.items()}
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"{', '.join(bad)} became NaN/inf at {state.nimg / 1000:.1f} kimg"
            )
        elapsed = time.perf_counter() - self.t0
        row = {"kimg": state.nimg / 1000, "step": state.step, **means}
        row["img_s"] = self.steps * batch_size / max(elapsed, 1e-9)
        self.__init__()
        return row


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Turn the first SIGINT into a flag the loop checks between steps (main thread only)."""
    hit = []

    def handler(signum, frame):  # noqa: ARG001
        if hit:
            raise KeyboardInterrupt
        hit.append(True)

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hit)
    finally:
        signal.signal(signal.SIGINT, previous)
