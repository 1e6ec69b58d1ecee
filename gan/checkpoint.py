"""Checkpoints: the complete training state in one file, written atomically.

A checkpoint holds G, D, the EMA generator, both optimisers, the step and image counters, every
RNG state and both configs, so that `--resume` continues the exact same run. It is written to a
temporary file in the same directory and renamed over the old one: a crash mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from gan.conventions import atomic_torch_save
from gan.networks import Architecture
from gan.training import GanState, TrainConfig, new_state

FORMAT = "raregan-dcgan-v1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or of another architecture."""


def state_to_dict(state: GanState, cfg: TrainConfig, extra: dict | None = None) -> dict:
    return {
        "format": FORMAT,
        "arch": state.arch.as_dict(),
        "config": cfg.as_dict(),
        "nimg": state.nimg,
        "step": state.step,
        "seconds": state.seconds,
        "G": state.G.state_dict(),
        "D": state.D.state_dict(),
        "G_ema": None if state.G_ema is None else state.G_ema.state_dict(),
        "opt_G": state.opt_G.state_dict(),
        "opt_D": state.opt_D.state_dict(),
        "scalers": {k: s.state_dict() for k, s in state.scalers.items()},
        "rng": {
            "loop": state.rng.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state(),
            "python": _python_state(),
        },
        "extra": extra or {},
    }


def save_checkpoint(path: Path, state: GanState, cfg: TrainConfig, extra: dict | None = None):
    atomic_torch_save(state_to_dict(state, cfg, extra), path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint onto the CPU, checking that it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not readable"
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a raregan DCGAN checkpoint")
    return ckpt


def check_architecture(ckpt: dict, arch: Architecture, path: Path) -> None:
    saved = Architecture(**ckpt["arch"])
    if saved != arch:
        diff = ", ".join(
            f"{k} {v} (asked {getattr(arch, k)})"
            for k, v in saved.as_dict().items()
            if getattr(arch, k) != v
        )
        raise CheckpointError(f"{path} holds a DCGAN with {diff}")


def init_from_source(state: GanState, ckpt: dict) -> None:
    """Transfer: copy a source run's G, D and EMA weights; optimisers, counters and RNG streams
    start fresh (the fine-tune is a new run that happens to start from these weights)."""
    state.G.load_state_dict(ckpt["G"])
    state.D.load_state_dict(ckpt["D"])
    if state.G_ema is not None:
        state.G_ema.load_state_dict(ckpt["G_ema"] if ckpt["G_ema"] is not None else ckpt["G"])


def restore_state(ckpt: dict, cfg: TrainConfig, device: torch.device) -> GanState:
    """Rebuild the training state of a checkpoint on `device`, RNG states included."""
    state = new_state(Architecture(**ckpt["arch"]), cfg, device)
    state.G.load_state_dict(ckpt["G"])
    state.D.load_state_dict(ckpt["D"])
    if state.G_ema is not None:
        state.G_ema.load_state_dict(ckpt["G_ema"] if ckpt["G_ema"] is not None else ckpt["G"])
    state.opt_G.load_state_dict(ckpt["opt_G"])
    state.opt_D.load_state_dict(ckpt["opt_D"])
    for k, s in state.scalers.items():
        if k in ckpt["scalers"]:
            s.load_state_dict(ckpt["scalers"][k])
    state.nimg, state.step = ckpt["nimg"], ckpt["step"]
    state.seconds = ckpt.get("seconds", 0.0)
    rng = ckpt["rng"]
    if rng["loop"].numel() == state.rng.get_state().numel():
        state.rng.set_state(rng["loop"])
    else:  # checkpoint from another device type: continue reproducibly, if not bit-exactly
        state.rng.manual_seed(cfg.seed + state.step)
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    name, keys, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    return state


# RNG states as plain lists, so that torch.load(weights_only=True) can read them back.
def _numpy_state() -> list:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]
