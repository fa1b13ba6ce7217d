"""DDPM forward process vs its closed form, diffusion features, errors."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from embedlab.training.diffusion import (
    BLOCKS,
    TinyUNet,
    ddpm_loss,
    diffusion_features,
    make_schedule,
    probe_sweep,
    q_sample,
    q_step,
    train_unet,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a busy machine several threads spin and cost far more CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _naive_alpha_bar(betas: list[float], t: int) -> float:
    out = 1.0
    for s in range(t + 1):
        out *= 1.0 - betas[s]
    return out


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_matches_explicit_product(kind: str) -> None:
    sched = make_schedule(1000, kind)  # type: ignore[arg-type]
    betas = sched.betas.tolist()
    for t in (0, 1, 10, 250, 999):
        assert sched.alpha_bars[t].item() == pytest.approx(_naive_alpha_bar(betas, t), rel=1e-10)
    assert bool((sched.betas > 0).all()) and bool((sched.betas <= 0.999).all())
    assert bool((sched.alpha_bars[1:] < sched.alpha_bars[:-1]).all())
    assert sched.alpha_bars[-1].item() < 1e-3  # x_T is almost pure noise


def test_linear_schedule_endpoints() -> None:
    sched = make_schedule()
    assert sched.steps == 1000
    assert sched.betas[0].item() == pytest.approx(1e-4)
    assert sched.betas[-1].item() == pytest.approx(0.02)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("t", [0, 10, 100, 500, 999])
def test_q_sample_mean_and_variance(seed: int, t: int) -> None:
    sched = make_schedule()
    n = 200_000
    x0 = torch.tensor([-1.0, -0.3, 0.0, 0.8, 1.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    xt = q_sample(x0.expand(n, 5), t, sched, noise)
    ab = _naive_alpha_bar(sched.betas.tolist(), t)
    se = math.sqrt((1 - ab) / n)
    assert torch.allclose(xt.mean(0), math.sqrt(ab) * x0, atol=5 * se + 1e-12)
    assert torch.allclose(xt.var(0), torch.full((5,), 1 - ab, dtype=torch.float64), rtol=0.02)


def test_chained_steps_equal_closed_form_in_distribution() -> None:
    sched = make_schedule(100)
    n, t_end = 40_000, 60
    x0 = torch.tensor([-0.9, 0.2, 1.0], dtype=torch.float64).expand(n, 3)
    gen = torch.Generator().manual_seed(0)
    x = x0.clone()
    for s in range(t_end + 1):
        x = q_step(x, s, sched, torch.randn(n, 3, generator=gen, dtype=torch.float64))
    closed = q_sample(x0, t_end, sched, torch.randn(n, 3, generator=gen, dtype=torch.float64))
    ab = _naive_alpha_bar(sched.betas.tolist(), t_end)
    se = math.sqrt((1 - ab) / n)
    for sample in (x, closed):
        assert torch.allclose(sample.mean(0), math.sqrt(ab) * x0[0], atol=5 * se)
        assert torch.allclose(
            sample.var(0), torch.full((3,), 1 - ab, dtype=torch.float64), rtol=0.03
        )


def test_chained_steps_explicit_coefficients() -> None:
    """With zero noise the chain scales x0 by prod sqrt(1 - beta); variances add up to 1 - abar."""
    sched = make_schedule(200, "cosine")
    x0 = torch.tensor([[0.7, -0.4]], dtype=torch.float64)
    x, var = x0.clone(), 0.0
    for s in range(150):
        x = q_step(x, s, sched, torch.zeros_like(x))
        b = sched.betas[s].item()
        var = (1 - b) * var + b
        ab = sched.alpha_bars[s].item()
        assert torch.allclose(x, math.sqrt(ab) * x0, rtol=1e-12)
        assert var == pytest.approx(1 - ab, rel=1e-10)


def _digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two synthetic classes: a bright top half or a bright bottom half, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.random((n, 28, 28)).astype(np.float32) * 0.3
    x[y == 0, :14] += 0.6
    x[y == 1, 14:] += 0.6
    return np.clip(x, 0, 1), y


def test_features_shapes_per_block_and_determinism() -> None:
    torch.manual_seed(0)
    net = TinyUNet(base=4).eval()
    x, _ = _digits(6)
    channels = {"down1": 4, "down2": 8, "down3": 16, "mid": 16, "up3": 16, "up2": 8, "up1": 4}
    for pool in (1, 2):
        feats = diffusion_features(net, x, 50, BLOCKS, pool=pool)
        assert set(feats) == set(BLOCKS)
        for b, f in feats.items():
            assert f.shape == (6, channels[b] * pool * pool) and f.dtype == np.float32
            assert np.isfinite(f).all()
    a = diffusion_features(net, x.reshape(6, 784), 100, ["mid"], seed=3)["mid"]
    b = diffusion_features(net, torch.from_numpy(x)[:, None], 100, ["mid"], seed=3)["mid"]
    c = diffusion_features(net, x, 100, ["mid"], seed=4)["mid"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # the noise draw depends on the seed
    assert all(not getattr(net, name)._forward_hooks for name in BLOCKS)  # hooks removed


def test_features_match_manual_forward() -> None:
    """The hook captures exactly the block output of a forward pass on x_t."""
    torch.manual_seed(1)
    net = TinyUNet(base=4).eval()
    x, _ = _digits(4)
    sched = make_schedule()
    got = diffusion_features(net, x, 10, ["down2"], schedule=sched, seed=7)["down2"]
    gen = torch.Generator().manual_seed(7)
    x0 = torch.from_numpy(x).reshape(4, 1, 28, 28) * 2 - 1
    t = torch.full((4,), 10)
    xt = q_sample(x0, t, sched, torch.randn(x0.shape, generator=gen))
    seen: list[torch.Tensor] = []
    h = net.down2.register_forward_hook(lambda _m, _i, o: seen.append(o))
    with torch.no_grad():
        net(xt, t)
    h.remove()
    np.testing.assert_allclose(got, seen[0].mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)


def test_ddpm_loss_and_training_reduce_loss() -> None:
    x, _ = _digits(24)
    model, hist = train_unet(x, base=4, epochs=3, batch_size=8, seed=0)
    assert len(hist) == 3 and hist[-1] < hist[0]  # measured 0.98 -> 0.66
    gen = torch.Generator().manual_seed(0)
    loss = ddpm_loss(model, torch.from_numpy(x[:8])[:, None] * 2 - 1, make_schedule(), gen)
    assert loss.ndim == 0 and torch.isfinite(loss)
    ae, _ = train_unet(x, base=4, objective="autoencoder", epochs=1, batch_size=24)
    assert not ae.skips and model.skips
    assert sum(p.numel() for p in ae.parameters()) == sum(p.numel() for p in model.parameters())


def test_probe_sweep_separates_easy_classes() -> None:
    torch.manual_seed(0)
    net = TinyUNet(base=4).eval()
    x, y = _digits(120)
    res = probe_sweep(net, x[:80], y[:80], x[80:], y[80:], steps=(10, 500), blocks=("down1", "mid"))
    assert len(res) == 4
    assert [r.accuracy for r in res] == sorted((r.accuracy for r in res), reverse=True)
    assert res[0].accuracy >= 0.95  # the halves differ by 0.6 in mean brightness


@pytest.mark.parametrize("t", [1000, -1, 5000])
def test_noise_step_outside_schedule(t: int) -> None:
    net = TinyUNet(base=4)
    x, _ = _digits(2)
    with pytest.raises(ValueError, match=r"t must be in \[0, 1000\).*got " + str(t)):
        diffusion_features(net, x, t)
    with pytest.raises(ValueError, match=r"t must be in \[0, 1000\)"):
        q_sample(torch.zeros(2, 3), t, make_schedule(), torch.zeros(2, 3))


def test_bad_inputs() -> None:
    net = TinyUNet(base=4)
    x, _ = _digits(3)
    with pytest.raises(TypeError, match="t must be an integer"):
        diffusion_features(net, x, 10.0)  # type: ignore[arg-type]
    bad = x.copy()
    bad[1, 5, 5] = np.nan
    with pytest.raises(ValueError, match=r"x must be finite.*index"):
        diffusion_features(net, bad, 10)
    with pytest.raises(ValueError, match="x must be finite"):
        train_unet(bad, epochs=1)
    with pytest.raises(ValueError, match=r"x must have shape.*got \(3, 100\)"):
        diffusion_features(net, np.zeros((3, 100), np.float32), 10)
    with pytest.raises(ValueError, match="blocks must be one of"):
        diffusion_features(net, x, 10, ["nope"])
    with pytest.raises(ValueError, match="kind must be one of cosine, linear"):
        make_schedule(10, "quadratic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="objective must be one of"):
        train_unet(x, objective="gan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"one step per sample \(2\), got shape \(3,\)"):
        q_step(torch.zeros(2, 3), torch.tensor([1, 2, 3]), make_schedule(), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="pool must be >= 1"):
        diffusion_features(net, x, 10, pool=0)
