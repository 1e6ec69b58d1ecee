from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch

from gan.checkpoint import (
    CheckpointError,
    check_architecture,
    load_checkpoint,
    restore_state,
    save_checkpoint,
)
from gan.diffaugment import color, cutout, diff_augment, random_dihedral, translation
from gan.networks import Architecture, build
from gan.training import (
    TrainConfig,
    TrainingDiverged,
    new_state,
    sample,
    to_model_range,
    to_uint8,
    train,
    train_step,
)

CPU = torch.device("cpu")


def tiny_config(**kw) -> TrainConfig:
    defaults = dict(batch_size=8, precision="fp32", snapshot_kimg=1.0, log_steps=2, ema_kimg=0.1)
    return TrainConfig(**{**defaults, **kw})


def tiny_arch(size=32) -> Architecture:
    return Architecture(size=size, nz=16, ngf=8, ndf=8)


def class_images(n=20, size=32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_networks_map_latents_to_images_and_images_to_logits(size):
    G, D = build(Architecture(size=size, nz=10, ngf=4, ndf=4))
    x = G(torch.randn(3, 10))
    assert x.shape == (3, 3, size, size) and x.abs().max() <= 1
    assert D(x).shape == (3,)


def test_unsupported_size_is_refused():
    with pytest.raises(ValueError, match="size 48 is not supported"):
        Architecture(size=48)


def test_uint8_round_trip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_model_range(x)), x)


def test_translation_shifts_content_and_fills_zeros():
    x = torch.arange(16.0).view(1, 1, 4, 4) + 1
    g = torch.Generator().manual_seed(0)
    out = translation(x, g, ratio=0.5)
    # the result is x shifted by some (dy, dx) in [-2, 2]^2 with zeros where it left the frame
    matches = []
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            ref = torch.zeros_like(x)
            src = x[0, 0, max(dy, 0) : 4 + min(dy, 0), max(dx, 0) : 4 + min(dx, 0)]
            ref[0, 0, max(-dy, 0) : 4 + min(-dy, 0), max(-dx, 0) : 4 + min(-dx, 0)] = src
            matches.append(torch.equal(out, ref))
    assert sum(matches) == 1


def test_cutout_zeroes_about_a_quarter_on_average():
    x = torch.ones(400, 3, 16, 16)
    out = cutout(x, torch.Generator().manual_seed(0))
    zero_fraction = (out == 0).float().mean().item()
    assert 0.15 < zero_fraction < 0.26  # 8x8 of 16x16 = 0.25 when not clipped by the border
    assert ((out == 0) | (out == 1)).all()


def test_color_changes_images_but_keeps_shape():
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    out = color(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.allclose(out, x)


def test_diff_augment_is_differentiable_and_switchable():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    diff_augment(x, ("color", "translation", "cutout"), torch.Generator()).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert diff_augment(x, ()) is x


def test_random_dihedral_only_permutes_pixels():
    x = torch.rand(64, 3, 8, 8)
    out = random_dihedral(x, torch.Generator().manual_seed(0))
    assert torch.equal(out.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    assert not torch.equal(out, x)


def test_train_step_updates_both_networks_and_ema():
    cfg = tiny_config()
    state = new_state(tiny_arch(), cfg, CPU)
    before = [p.clone() for p in (*state.G.parameters(), *state.D.parameters())]
    ema_before = next(state.G_ema.parameters()).clone()
    stats = train_step(state, class_images(), cfg)
    after = [*state.G.parameters(), *state.D.parameters()]
    assert all(not torch.equal(b, a) for b, a in zip(before, after))
    assert not torch.equal(ema_before, next(state.G_ema.parameters()))
    assert set(stats) == {"loss_D", "loss_G", "D_real", "D_fake"}
    assert state.nimg == 8 and state.step == 1


def test_sampling_leaves_the_generator_untouched():
    state = new_state(tiny_arch(), tiny_config(), CPU)
    before = {k: v.clone() for k, v in state.G.state_dict().items()}
    out = sample(state.G, torch.randn(10, 16), batch_size=4)
    assert out.shape == (10, 3, 32, 32) and out.dtype == torch.uint8
    assert all(torch.equal(before[k], v) for k, v in state.G.state_dict().items())


def run_steps(cfg, images, until_kimg, state=None, snapshots=None, log=None):
    cfg.kimg = until_kimg
    state = state or new_state(tiny_arch(), cfg, CPU)
    snap = snapshots.append if snapshots is not None else (lambda s: None)
    return train(state, images, cfg, snap, log or (lambda row: None), progress=False)


def seed_global_rngs(seed: int) -> None:
    """What a fresh process (or a job, see pipelines.jobs.run_job) starts from."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def global_draws() -> tuple[list, list, list]:
    """The next values of torch's, numpy's and Python's global RNGs, normal draws included
    (numpy and Python cache the second normal of a pair: that cache is part of the state)."""
    return (
        torch.randn(3).tolist(),
        [*np.random.random_sample(2).tolist(), np.random.standard_normal()],
        [random.random(), random.gauss(0.0, 1.0)],
    )


def drawing_log(rows: list):
    """A log callback that draws from every global RNG, as code running between steps in the
    same process may (a library, a user hook). The training step itself draws only from the
    state's own generator, so without such a consumer a resume never shows whether the global
    streams were put back."""

    def log(row: dict) -> None:
        rows.append((row["step"], *global_draws()))

    return log


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_is_bit_exact(tmp_path, precision):
    """2N steps in one go == N steps, checkpoint, fresh process state, N more steps: the same
    weights, loop RNG and global RNG streams (what the callbacks drew after step N)."""
    images = class_images()
    seed_global_rngs(0)
    straight_rows = []
    straight = run_steps(
        tiny_config(precision=precision), images, 0.16, log=drawing_log(straight_rows)
    )  # 20 steps of 8

    cfg = tiny_config(precision=precision)
    seed_global_rngs(0)
    half = run_steps(cfg, images, 0.08, log=drawing_log([]))
    save_checkpoint(tmp_path / "last.pt", half, cfg)
    seed_global_rngs(12345)  # disturb the global RNGs: the checkpoint must restore them
    ckpt = load_checkpoint(tmp_path / "last.pt")
    resumed_rows = []
    state = restore_state(ckpt, cfg, CPU)
    resumed = run_steps(cfg, images, 0.16, state=state, log=drawing_log(resumed_rows))

    assert resumed.step == straight.step == 20
    for name in ("G", "D", "G_ema"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert torch.equal(straight.rng.get_state(), resumed.rng.get_state())
    assert [r[0] for r in resumed_rows] == [12, 14, 16, 18, 20]
    assert resumed_rows == [r for r in straight_rows if r[0] > 10]


def test_restore_state_puts_every_global_rng_back(tmp_path):
    """A checkpoint holds torch's, numpy's and Python's global RNG states; restoring it makes
    the next draws of each exactly those that followed the save, whatever ran in between.
    Each stream is checked on its own, so restoring only some of them fails too."""
    cfg = tiny_config()
    state = new_state(tiny_arch(), cfg, CPU)
    seed_global_rngs(7)
    global_draws()  # leaves a cached normal in numpy and in Python's random
    save_checkpoint(tmp_path / "last.pt", state, cfg)
    expected = global_draws()
    seed_global_rngs(12345)  # another process, or later work in this one
    global_draws()
    restore_state(load_checkpoint(tmp_path / "last.pt"), cfg, CPU)
    got = global_draws()
    for stream, e, g in zip(("torch", "numpy", "python"), expected, got):
        assert g == e, stream


def test_snapshots_at_interval_and_end(tmp_path):
    """A snapshot at every snapshot_kimg boundary the training crosses, and one of the final
    state at the end; where the end is a boundary, one snapshot there, not two."""

    def snapshots_until(kimg: float) -> tuple[list, object]:
        taken = []

        def snapshot(s):  # what a snapshot holds: the state as it is at that moment
            save_checkpoint(tmp_path / f"{len(taken)}.pt", s, cfg)
            taken.append((s.step, s.nimg))

        cfg = tiny_config(snapshot_kimg=0.04, kimg=kimg)
        state = new_state(tiny_arch(), cfg, CPU)
        train(state, class_images(), cfg, snapshot, lambda row: None, progress=False)
        return taken, state

    # 8 images per step: the boundaries at 40 and 80 images, the end at the step past 100
    taken, state = snapshots_until(0.1)
    assert taken == [(5, 40), (10, 80), (13, 104)]
    assert (state.step, state.nimg) == taken[-1]  # the last one is the final state
    saved = [load_checkpoint(tmp_path / f"{i}.pt")["nimg"] for i in range(3)]
    assert saved == [40, 80, 104]
    taken, _ = snapshots_until(0.08)
    assert taken == [(5, 40), (10, 80)]


def test_nan_loss_stops_without_a_snapshot():
    cfg = tiny_config(snapshot_kimg=100)
    state = new_state(tiny_arch(), cfg, CPU)
    with torch.no_grad():
        next(state.D.parameters()).fill_(float("nan"))
    snaps = []
    with pytest.raises(TrainingDiverged, match="NaN/inf"):
        run_steps(cfg, class_images(), 0.1, state=state, snapshots=snaps)
    assert snaps == []


def test_ctrl_c_snapshots_then_stops():
    cfg = tiny_config(kimg=1.0, snapshot_kimg=100, log_steps=1)
    state = new_state(tiny_arch(), cfg, CPU)
    snaps = []

    def log(row):
        if row["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(state, class_images(), cfg, snaps.append, log, progress=False)
    assert len(snaps) == 1 and snaps[0].step == 4  # the next step completes, then snapshot


def test_checkpoint_checks(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    cfg = tiny_config()
    save_checkpoint(tmp_path / "a.pt", new_state(tiny_arch(32), cfg, CPU), cfg)
    ckpt = load_checkpoint(tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="size 32 \\(asked 64\\)"):
        check_architecture(ckpt, tiny_arch(64), tmp_path / "a.pt")
    assert not list(tmp_path.glob("*.tmp"))


def test_resize_sn_generator_has_no_strided_transposed_convolution():
    G, D = build(Architecture(size=64, nz=10, ngf=4, ndf=4, kind="resize-sn"))
    strided = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.stride for m in strided] == [(1, 1)]  # only the 1x1 -> 4x4 projection
    assert sum(isinstance(m, torch.nn.Upsample) for m in G.modules()) == 4
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(torch.nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    # spectral norm: the largest singular value of each reshaped weight is ~1 after iterations
    D.train()
    for _ in range(30):
        D(torch.randn(2, 3, 64, 64))
    w = convs[1].weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_hinge_and_ns_losses_have_their_closed_forms():
    from gan.training import _d_losses, _g_loss

    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # hinge: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5)/2 + (0 + 1)/2
    assert _d_losses(real, fake, "hinge").item() == pytest.approx(0.75)
    assert _g_loss(fake, "hinge").item() == pytest.approx(1.0)
    sp = torch.nn.functional.softplus
    assert _d_losses(real, fake, "ns").item() == pytest.approx(
        (sp(-real).mean() + sp(fake).mean()).item()
    )


def test_r1_penalty_of_a_linear_discriminator():
    from gan.training import r1_penalty

    w = torch.randn(3 * 8 * 8)

    def D(x):
        return x.flatten(1) @ w

    cfg = tiny_config(r1_gamma=0.5, r1_every=4, diffaugment=())
    real = torch.rand(5, 3, 8, 8)
    # grad_x D = w for every image: gamma / 2 * ||w||^2, times the lazy interval
    expected = 0.5 / 2 * w.square().sum() * 4
    assert r1_penalty(D, real, cfg, torch.Generator()).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("kind,loss,r1", [("resize-sn", "hinge", 0.0), ("resize-sn", "ns", 1.0)])
def test_variants_train_and_resume_bit_exactly(tmp_path, kind, loss, r1):
    arch = Architecture(size=32, nz=16, ngf=8, ndf=8, kind=kind)
    images = class_images()

    def steps(cfg, until, state=None):
        cfg.kimg = until
        state = state or new_state(arch, cfg, CPU)
        return train(state, images, cfg, lambda s: None, lambda row: None, progress=False)

    cfg = tiny_config(loss=loss, r1_gamma=r1, r1_every=2)
    straight = steps(cfg, 0.08)
    half = steps(tiny_config(loss=loss, r1_gamma=r1, r1_every=2), 0.04)
    save_checkpoint(tmp_path / "last.pt", half, cfg)
    resumed = steps(cfg, 0.08, restore_state(load_checkpoint(tmp_path / "last.pt"), cfg, CPU))
    for name in ("G", "D"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_freeze_d_fixes_the_lowest_blocks_only():
    cfg = tiny_config(freeze_d=1)
    state = new_state(Architecture(size=32, nz=16, ngf=8, ndf=8, kind="resize-sn"), cfg, CPU)
    before = {k: v.clone() for k, v in state.D.state_dict().items()}
    for _ in range(3):
        train_step(state, class_images(), cfg)
    after = state.D.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("main.0."))
    assert not torch.equal(
        before["main.2.parametrizations.weight.original"],
        after["main.2.parametrizations.weight.original"],
    )
    with pytest.raises(ValueError, match="can freeze 0..3"):
        new_state(tiny_arch(), tiny_config(freeze_d=4), CPU)
