"""InfoMEC against a naive float64 reference on small discrete data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from embedlab.analysis import InfoMEC, infomec
from embedlab.analysis.infomec import (
    explicitness,
    modularity_compactness,
    normalized_mutual_information,
)


def _naive_mi(a: list[int], b: list[int]) -> float:
    n = len(a)
    pa: dict[int, float] = {}
    pb: dict[int, float] = {}
    pab: dict[tuple[int, int], float] = {}
    for u, v in zip(a, b, strict=True):
        pa[u] = pa.get(u, 0.0) + 1.0 / n
        pb[v] = pb.get(v, 0.0) + 1.0 / n
        pab[(u, v)] = pab.get((u, v), 0.0) + 1.0 / n
    return sum(p * math.log(p / (pa[u] * pb[v])) for (u, v), p in pab.items())


def _naive_infomec(s: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, float, float]:
    k, n_lat = s.shape[1], z.shape[1]
    nmi = np.zeros((k, n_lat))
    for i in range(k):
        h = _naive_mi(list(s[:, i]), list(s[:, i]))
        for j in range(n_lat):
            nmi[i, j] = _naive_mi(list(s[:, i]), list(z[:, j])) / h
    active = [j for j in range(n_lat) if z[:, j].max() > z[:, j].min()]
    m_terms = [max(nmi[:, j]) / sum(nmi[:, j]) for j in active]
    c_terms = [max(nmi[i, active]) / sum(nmi[i, active]) for i in range(k)]
    n_act = len(active)
    infom = (sum(m_terms) / len(m_terms) - 1 / k) / (1 - 1 / k)
    infoc = (sum(c_terms) / len(c_terms) - 1 / n_act) / (1 - 1 / n_act)
    return nmi, infom, infoc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_reference_on_random_codes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 4, size=(300, 3))
    z = np.concatenate(
        [s[:, :2] + rng.integers(0, 2, size=(300, 2)), rng.integers(0, 3, (300, 2))], 1
    )
    nmi = normalized_mutual_information(s, z, discrete_latents=True)
    ref_nmi, ref_m, ref_c = _naive_infomec(s, z)
    assert np.allclose(nmi, ref_nmi, atol=1e-12)
    m, c = modularity_compactness(nmi, np.ones(4, dtype=bool))
    assert m == pytest.approx(ref_m, abs=1e-12)
    assert c == pytest.approx(ref_c, abs=1e-12)


def _factorial(sizes: tuple[int, ...]) -> np.ndarray:
    return np.array(list(itertools.product(*[range(k) for k in sizes])), dtype=np.int64)


def test_permuted_perfect_code_scores_one() -> None:
    s = _factorial((3, 4, 5))  # every combination once: independent sources, exact MI 0
    perm = [2, 0, 1]
    relabel = np.array([3, 1, 4, 0, 2])  # a bijective relabelling of the values
    z = s[:, perm].copy()
    z[:, 0] = relabel[z[:, 0]]
    r = infomec(s, z, discrete_latents=True)
    assert isinstance(r, InfoMEC)
    assert r.infom == pytest.approx(1.0, abs=1e-12)
    assert r.infoc == pytest.approx(1.0, abs=1e-12)
    assert r.infoe > 0.99  # measured 0.9999
    assert np.allclose(r.nmi[perm, [0, 1, 2]], 1.0)


def test_constant_latent_is_inactive_and_entangled_code_scores_low() -> None:
    s = _factorial((4, 4))
    z = np.stack([s[:, 0] * 4 + s[:, 1], np.zeros(16, dtype=np.int64)], axis=1)
    r = infomec(s, z, discrete_latents=True)
    assert r.active.tolist() == [True, False]
    assert r.infom == pytest.approx(0.0, abs=1e-12)  # one latent carries both sources
    assert r.infoc == 1.0  # one active latent: nothing to spread over


def test_continuous_latents() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, size=(400, 2))
    good = s[:, ::-1] + 0.05 * rng.normal(size=(400, 2))
    mixed = np.stack([s[:, 0] + s[:, 1], s[:, 0] - s[:, 1]], 1) + 0.05 * rng.normal(size=(400, 2))
    r_good = infomec(s, good, discrete_latents=False)
    r_mixed = infomec(s, mixed, discrete_latents=False)
    assert r_good.infom > 0.9 and r_good.infoc > 0.9  # measured 0.99 / 0.99
    assert r_good.infom > r_mixed.infom + 0.3
    assert r_good.infoe > 0.95


def test_explicitness_linear_vs_nonlinear() -> None:
    s = np.repeat(np.arange(4), 50)[:, None]
    linear = s.astype(float) + 0.01
    folded = np.abs(s - 1.5).astype(float)  # not linearly separable: 0/3 and 1/2 coincide
    assert explicitness(s, linear, discrete_latents=False)[0] > 0.95
    assert explicitness(s, folded, discrete_latents=False)[0] < 0.6  # at most 1 bit of 2


def test_bad_input() -> None:
    s = np.zeros((5, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="latents must be finite"):
        infomec(s, np.full((5, 2), np.nan), discrete_latents=False)
    with pytest.raises(ValueError, match="same number of rows"):
        infomec(s, np.zeros((4, 2)), discrete_latents=True)
    with pytest.raises(TypeError, match="sources must hold discrete"):
        infomec(s.astype(float), np.zeros((5, 2)), discrete_latents=True)
    with pytest.raises(TypeError, match="discrete_latents must be True or False"):
        infomec(s, np.zeros((5, 2)), discrete_latents=1)  # type: ignore[arg-type]
