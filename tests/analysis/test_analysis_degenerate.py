"""Every public measure of embedlab.analysis on degenerate data: constant, duplicate-heavy,
lattice, and extreme scale (1e200 / 1e-200). Nothing may come back NaN or inf without a
documented reason and a warning; undefined answers are a ValueError that says why."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import embedlab.analysis as A

RNG = np.random.default_rng(0)
BASE = RNG.normal(size=(200, 5)) @ RNG.normal(size=(5, 6))  # 5-d in 6 dims
OTHER = BASE @ RNG.normal(size=(6, 4)) + 0.3 * RNG.normal(size=(200, 4))
LABELS = np.arange(200) % 4
SOURCES = np.stack([LABELS, (BASE[:, 0] > 0).astype(np.int64)], axis=1)  # for InfoMEC
CONSTANT = np.full((200, 6), 0.3)
PARTIAL_DUP = np.concatenate([BASE[:120], BASE[:80]])  # 80 points appear twice
ALL_DUP = np.repeat(BASE[:40], 5, axis=0)  # every point five times


@dataclass(frozen=True)
class Case:
    """How to call one public function on a point cloud ``x (200, 6)``."""

    call: Callable[[np.ndarray], Any]
    power: float = 0.0  # result(x * s) = result(x) * s**power (0: scale-invariant)
    constant: str | None = None  # ValueError message on constant data (None: a value)


def _floats(value: Any) -> np.ndarray:
    """Every number in a result (floats, arrays, dataclasses, dicts, tuples) as one vector."""
    if isinstance(value, (int, float, np.number)):
        return np.array([float(value)])
    if isinstance(value, np.ndarray):
        return value.astype(np.float64).ravel()
    if isinstance(value, dict):
        return np.concatenate([_floats(v) for v in value.values() if v is not None] or [[]])
    if isinstance(value, (tuple, list)):
        return np.concatenate([_floats(v) for v in value if v is not None] or [[]])
    if hasattr(value, "__dataclass_fields__"):
        return _floats({k: getattr(value, k) for k in value.__dataclass_fields__})
    return np.array([])


def _scale_free(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("mean_norm", "label_sharpness")}


CASES: dict[str, Case] = {
    "twonn": Case(lambda x: A.twonn(x), constant="at least 2 distinct points"),
    "mle_id": Case(lambda x: A.mle_id(x), constant="at least 2 distinct points"),
    "d_data": Case(lambda x: A.d_data(x), constant="at least 2 distinct points"),
    "d_repr": Case(lambda x: A.d_repr(x, estimator="twonn"), constant="at least 2 distinct"),
    "pca_dims": Case(lambda x: A.pca_dims(x).explained_variance_ratio, constant="PCA"),
    "effective_rank": Case(lambda x: A.effective_rank(x, center=True), constant="centred"),
    "knn": Case(lambda x: A.knn(x, 3)[0], power=1.0),
    "k_occurrence": Case(lambda x: A.k_occurrence(x, 5), constant="k-occurrence"),
    "hubness": Case(lambda x: A.hubness(x, 5), constant="k-occurrence"),
    "linear_cka": Case(lambda x: A.linear_cka(x, OTHER), constant="CKA is undefined"),
    "linear_cka_debiased": Case(
        lambda x: A.linear_cka(x, OTHER, debiased=True), constant="CKA is undefined"
    ),
    "rbf_cka": Case(lambda x: A.rbf_cka(x, OTHER), constant="CKA is undefined"),
    "rbf_cka_debiased": Case(
        lambda x: A.rbf_cka(x, OTHER, debiased=True), constant="CKA is undefined"
    ),
    "relative_projection": Case(lambda x: A.relative_projection(x, x[:7])),
    "unit_correlation": Case(lambda x: A.unit_correlation(x, OTHER)),
    "match_units": Case(lambda x: A.match_units(x, OTHER).matched_correlation),
    "sparse_match_units": Case(lambda x: A.sparse_match_units(x, x[:, ::-1]).r2),
    "alignment": Case(lambda x: A.alignment(x, x[::-1], alpha=1.0), power=1.0),
    "uniformity": Case(lambda x: A.uniformity(x / np.abs(x).max())),
    "neural_collapse": Case(lambda x: A.neural_collapse(x, LABELS), constant="class means"),
    "mixup_probe": Case(
        lambda x: A.mixup_probe(lambda v: v, x[LABELS == 0], x[LABELS == 1], lams=[0, 0.3, 1]),
        constant="must differ",
    ),
    "mixup_geometry": Case(
        lambda x: A.mixup_geometry([x[:50]], [0.5], x[LABELS == 0].mean(0), x[LABELS == 1].mean(0)),
        constant="must differ",
    ),
    "label_sharpness": Case(
        lambda x: A.label_sharpness(x, LABELS, n_pairs=5000), power=-1.0, constant="identical"
    ),
    "procrustes": Case(lambda x: A.procrustes(x, OTHER[:, :3]).error, constant="must vary"),
    "cca_align": Case(
        lambda x: A.cca_align(x, OTHER, 2).correlations, constant=r"CCA \(X has rank 0\)"
    ),
    "subspace_align": Case(lambda x: A.subspace_align(x, OTHER, 3).score, constant="distinct"),
    "mean_center_align": Case(lambda x: A.mean_center_align(x, OTHER[:, :2] @ np.ones((2, 6)))),
    "analyze_embeddings": Case(  # the scale-free part (mean_norm, label_sharpness: below)
        lambda x: _scale_free(A.analyze_embeddings(x, LABELS).to_dict()),
        constant="distinct points",
    ),
    "infomec": Case(
        lambda x: A.infomec(SOURCES, x, discrete_latents=False),
        constant="at least one latent that varies",
    ),
    "compare_embeddings": Case(
        lambda x: A.compare_embeddings([x, OTHER]).to_dict(), constant="distinct points"
    ),
}
# public functions that do not take a point cloud to measure (models, projections, pages)
NOT_MEASURES = {
    "explain_embedding",  # a trained black box and trees, not a measure of the point cloud
    "faiss_available",
    "feature_importance",
    "fast_walsh_hadamard",
    "intrinsic_dimension_sweep",
    "make_projection",
    "render_analysis",
    "representations",
    "stitch",
    "train_full",
    "train_subspace",
}


def test_every_public_function_is_covered() -> None:
    functions = {n for n in A.__all__ if inspect.isfunction(getattr(A, n))}
    covered = {n.removesuffix("_debiased") for n in CASES}
    assert functions - NOT_MEASURES == covered


def _quiet(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with numpy's overflow / invalid / divide-by-zero as errors and our own
    warnings (duplicates dropped, ...) allowed."""
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn()


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_extreme_scale_gives_the_unit_scale_answer(name: str, scale: float) -> None:
    case = CASES[name]
    ref = _floats(_quiet(lambda: case.call(BASE)))
    assert ref.size and np.isfinite(ref).all()
    got = _floats(_quiet(lambda: case.call(BASE * scale)))
    assert np.isfinite(got).all()
    expected = ref * scale**case.power
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9 * scale**case.power)


@pytest.mark.parametrize("name", CASES)
def test_constant_data(name: str) -> None:
    case = CASES[name]
    if case.constant is not None:
        with pytest.raises(ValueError, match=case.constant):
            _quiet(lambda: case.call(CONSTANT))
        return
    out = _floats(_quiet(lambda: case.call(CONSTANT)))
    assert np.isfinite(out).all()


@pytest.mark.parametrize("name", CASES)
def test_partially_duplicated_data_is_finite(name: str) -> None:
    out = _floats(_quiet(lambda: CASES[name].call(PARTIAL_DUP)))
    assert out.size and np.isfinite(out).all()


# ------------------------------------------------------------ intrinsic dimension in detail


def _naive_twonn_dropping(x: np.ndarray) -> float:
    """Facco et al. with an O(n^2) distance matrix, dropping r1 = 0 and r2 = r1 points."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    srt = np.sort(d, axis=1)
    r1, r2 = srt[:, 0], srt[:, 1]
    keep = (r1 > 0) & (r2 > r1)
    mu = np.sort(r2[keep] / r1[keep])
    n = mu.size
    n_keep = int(n * 0.9)
    xs = np.log(mu[:n_keep])
    ys = -np.log(1 - np.arange(1, n_keep + 1) / n)
    return float((xs * ys).sum() / (xs * xs).sum())


def test_twonn_drops_duplicates_and_ties_like_the_naive_reference() -> None:
    grid = np.stack(np.meshgrid(*[np.arange(4.0)] * 3), -1).reshape(-1, 3)  # all ties
    x = np.concatenate([RNG.uniform(0, 3, size=(300, 3)), grid, grid[:10]])
    with (
        pytest.warns(UserWarning, match=r"twonn: dropped 20 of 374 points whose nearest"),
        pytest.warns(UserWarning, match=r"twonn: dropped \d+ of 374 points whose two nearest"),
    ):
        fit = A.twonn(x, return_fit=True)
    assert fit.n_duplicates == 20 and fit.n_ties > 0
    assert fit.dimension == pytest.approx(_naive_twonn_dropping(x), rel=1e-9)


@pytest.mark.parametrize(("spacing", "offset"), [(1.0, 0.0), (0.1, 0.3), (0.37, 1e3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_twonn_on_a_lattice_is_an_error_not_a_huge_number(
    spacing: float, offset: float, dtype: type
) -> None:
    grid = np.stack(np.meshgrid(*[np.arange(8.0)] * 3), -1).reshape(-1, 3)
    x = (grid * spacing + offset).astype(dtype)  # ties up to the rounding of dtype
    with (
        pytest.warns(UserWarning, match=r"dropped 512 of 512 points whose two nearest"),
        pytest.raises(ValueError, match=r"twonn needs at least 2 points left .* 512 ties"),
    ):
        A.twonn(x)


def test_fully_duplicated_data_says_how_to_fix_it() -> None:
    with (
        pytest.warns(UserWarning, match=r"dropped 200 of 200 points"),
        pytest.raises(ValueError, match=r"200 duplicates .* np\.unique\(X, axis=0\)"),
    ):
        A.twonn(ALL_DUP)
    with (
        pytest.warns(UserWarning, match=r"mle_id: dropped 200 of 200"),
        pytest.raises(ValueError, match=r"all 200 points have an exact duplicate"),
    ):
        A.mle_id(ALL_DUP)
    res = _quiet(lambda: A.analyze_embeddings(ALL_DUP))
    assert res.twonn is None and res.mle is None
    assert any(n.startswith("TwoNN undefined: twonn needs") for n in res.notes)
    assert res.to_dict()["twonn"] is None


def test_mle_is_inf_with_a_warning_when_neighbours_are_equidistant() -> None:
    simplex = np.eye(30)  # every pair at distance sqrt(2)
    with pytest.warns(UserWarning, match=r"k=5 nearest neighbours of every point are equidistant"):
        assert A.mle_id(simplex, k=5) == math.inf
    grid = np.stack(np.meshgrid(*[np.arange(8.0)] * 3), -1).reshape(-1, 3)
    assert A.mle_id(grid) == pytest.approx(3.0, rel=0.05)  # measured 3.002 (k=20: no ties)


def test_constant_messages_name_the_input() -> None:
    with pytest.raises(
        ValueError, match=r"X must hold at least 2 distinct points, got 200 identical points"
    ):
        A.twonn(CONSTANT)
    with pytest.raises(ValueError, match=r"CKA is undefined .*: Y has 200 identical rows"):
        A.linear_cka(BASE, CONSTANT)
    with pytest.raises(ValueError, match=r"b must hold at least 2 distinct points"):
        A.compare_embeddings([BASE, CONSTANT], ["a", "b"])
    with pytest.raises(ValueError, match=r"Y must vary for a Procrustes fit, got all rows equal"):
        A.procrustes(BASE, CONSTANT)
    with pytest.raises(ValueError, match=r"X must not be all zeros"):
        A.effective_rank(np.zeros((5, 3)))


# ------------------------------------------------------------ similarity in detail


def _naive_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def test_linear_cka_at_1e200_equals_the_naive_value() -> None:
    expected = _naive_linear_cka(BASE, OTHER)
    assert A.linear_cka(BASE * 1e200, OTHER) == pytest.approx(expected, rel=1e-10)
    assert A.linear_cka(BASE * 1e200, OTHER * 1e-200) == pytest.approx(expected, rel=1e-10)


def test_rbf_median_of_mostly_duplicates() -> None:
    x = np.concatenate([np.repeat(BASE[:1], 150, axis=0), BASE[1:51]])  # > half pairs equal
    with (
        pytest.warns(UserWarning, match=r"more than half of the pairs of rows of X are equal"),
        pytest.warns(UserWarning, match=r"more than half of the pairs of rows of Y are equal"),
    ):
        value = A.rbf_cka(x, x[:, ::-1])
    assert value == pytest.approx(1.0, abs=1e-12)
    big = A.rbf_cka(x * 1e200, x[:, ::-1], sigma=1.0)  # every other pair at kernel 0
    assert math.isfinite(big)


def test_constant_units_warn() -> None:
    y = OTHER.copy()
    y[:, 1] = 7.0
    with pytest.warns(UserWarning, match=r"1 of 4 units of Y have zero variance; their corr"):
        corr = A.unit_correlation(BASE, y)
    assert np.all(corr[:, 1] == 0.0)
    with pytest.warns(UserWarning, match=r"1 of 4 units of Y .* predicted exactly \(r2 = 1\)"):
        assert A.sparse_match_units(BASE, y).r2[1] == 1.0


def test_knn_distances_beyond_float64_warn() -> None:
    x = np.array([[-1.5e308, 0.0], [1.5e308, 0.0], [1.5e308, 1e300]])
    with pytest.warns(UserWarning, match=r"knn: 1 of 3 neighbour distances of X exceed float64"):
        dist, idx = A.knn(x, 1)
    assert dist[0, 0] == math.inf and dist[1, 0] == pytest.approx(1e300, rel=1e-12)
    np.testing.assert_array_equal(idx[:, 0], [1, 2, 1])


def test_relative_projection_zero_rows_and_tiny_rows() -> None:
    x = np.vstack([np.zeros((1, 6)), BASE[:3] * 1e-300])
    rel = A.relative_projection(x, BASE[:2])
    assert np.all(rel[0] == 0.0)
    np.testing.assert_allclose(rel[1:], A.relative_projection(BASE[:3], BASE[:2]), rtol=1e-12)


# ------------------------------------------------------------ geometry in detail


def test_alignment_and_uniformity_out_of_float64_range_raise() -> None:
    with pytest.raises(ValueError, match=r"alignment \(alpha=2\) is about 1e40\d, beyond"):
        A.alignment(BASE * 1e200, BASE[::-1] * 1e200)
    with pytest.raises(ValueError, match=r"uniformity \(t=2\) is below -1.8e308"):
        A.uniformity(BASE * 1e200)
    naive = np.mean([np.linalg.norm(a - b) ** 2 for a, b in zip(BASE, BASE[::-1], strict=True)])
    assert A.alignment(BASE * 1e150, BASE[::-1] * 1e150) == pytest.approx(naive * 1e300)
    assert A.alignment(BASE * 1e-200, BASE[::-1] * 1e-200) == 0.0  # 1e-400 underflows
    assert A.uniformity(BASE * 1e-200) == 0.0  # log E exp(-1e-400)


def test_uniformity_of_identical_and_mixed_pairs() -> None:
    assert A.uniformity(CONSTANT) == 0.0  # log E exp(0)
    # far apart copies of two points: only the 2 * C(50, 2) identical pairs count
    x = np.concatenate([np.zeros((50, 6)), np.full((50, 6), 1e200)])
    expected = math.log(2 * 50 * 49 / 2) - math.log(100 * 99 / 2)
    assert A.uniformity(x) == pytest.approx(expected, rel=1e-12)


def test_label_sharpness_skips_identical_inputs_with_different_labels() -> None:
    x = np.concatenate([BASE[:20], BASE[:20]])
    labels = np.concatenate([np.zeros(20, int), np.ones(20, int)])
    with pytest.warns(UserWarning, match=r"skipped \d+ of 2000 sampled pairs of identical"):
        value = A.label_sharpness(x, labels, n_pairs=2000)
    assert math.isfinite(value) and value > 0


def test_neural_collapse_with_equal_class_means() -> None:
    x = np.concatenate([BASE[:100], -BASE[:100]])  # every class mean is 0
    labels = np.concatenate([np.arange(100) % 2, np.arange(100) % 2])
    with pytest.raises(ValueError, match=r"got 2 equal class means \(between-class scatter"):
        A.neural_collapse(x, labels)


def test_analyze_scale_dependent_measures() -> None:
    ref = A.analyze_embeddings(BASE, LABELS)
    big = _quiet(lambda: A.analyze_embeddings(BASE * 1e200, LABELS))
    assert big.mean_norm == pytest.approx(ref.mean_norm * 1e200, rel=1e-12)
    assert ref.label_sharpness is not None and big.label_sharpness is not None
    assert big.label_sharpness == pytest.approx(ref.label_sharpness * 1e-200, rel=1e-12)
    naive = float(np.mean([np.sqrt((row * row).sum()) for row in BASE]))
    assert ref.mean_norm == pytest.approx(naive, rel=1e-12)
