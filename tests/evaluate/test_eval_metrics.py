"""Retrieval and clustering metrics against naive loops and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from embedlab.evaluate import clustering_metrics, retrieval_metrics


def naive_retrieval(
    q: np.ndarray,
    q_lab: np.ndarray,
    g: np.ndarray,
    g_lab: np.ndarray,
    ks: tuple[int, ...],
    metric: str,
    loo: bool,
) -> dict[str, float]:
    """One query at a time, a full sort, the Musgrave et al. (2020) definitions."""
    if metric == "cos":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
    p1, maps, rps = [], [], []
    rec: dict[int, list[float]] = {k: [] for k in ks}
    for i in range(len(q)):
        score = -np.sum((g - q[i]) ** 2, axis=1) if metric == "l2" else g @ q[i]
        order = [j for j in np.argsort(-score, kind="stable") if not (loo and j == i)]
        rel = [g_lab[j] == q_lab[i] for j in order]
        r = sum(g_lab[j] == q_lab[i] for j in range(len(g)) if not (loo and j == i))
        if r == 0:
            continue
        p1.append(float(rel[0]))
        for k in ks:
            rec[k].append(float(any(rel[:k])))
        hits, ap = 0, 0.0
        for pos in range(r):
            if rel[pos]:
                hits += 1
                ap += hits / (pos + 1)
        maps.append(ap / r)
        rps.append(sum(rel[:r]) / r)
    out = {"precision_at_1": float(np.mean(p1))}
    out.update({f"recall_at_{k}": float(np.mean(rec[k])) for k in ks})
    out["map_at_r"] = float(np.mean(maps))
    out["r_precision"] = float(np.mean(rps))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric", ["cos", "ip", "l2"])
def test_leave_one_out_matches_naive_loop(seed: int, metric: str) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=60)
    x = rng.normal(size=(60, 5)) + y[:, None] * 0.7  # some class structure
    got = retrieval_metrics(x, y, k=(1, 3, 10), metric=metric, block_size=7)  # type: ignore[arg-type]
    want = naive_retrieval(x, y, x, y, (1, 3, 10), metric, loo=True)
    assert got == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_query_vs_gallery_matches_naive_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q_lab, g_lab = rng.integers(0, 3, size=25), rng.integers(0, 3, size=40)
    q = rng.normal(size=(25, 4)) + q_lab[:, None]
    g = rng.normal(size=(40, 4)) + g_lab[:, None]
    got = retrieval_metrics(q, q_lab, g, g_lab, k=(1, 5))
    assert got == pytest.approx(naive_retrieval(q, q_lab, g, g_lab, (1, 5), "cos", False))


def test_leave_one_out_with_a_second_embedding_of_the_same_items() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=30)
    new, old = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    got = retrieval_metrics(new, y, old, y, leave_one_out=True)
    assert got == pytest.approx(naive_retrieval(new, y, old, y, (1, 5, 10), "cos", True))


def test_torch_and_float32_inputs_agree_with_numpy() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, size=80)
    x = rng.normal(size=(80, 8)).astype(np.float32)
    a = retrieval_metrics(x, y)
    b = retrieval_metrics(torch.from_numpy(x), torch.from_numpy(y))
    assert a == b


def test_perfect_and_recall_is_any_hit_not_fraction() -> None:
    x = np.array([[1.0, 0.0], [0.99, 0.01], [0.98, 0.02], [0.0, 1.0], [0.01, 0.99]])
    y = np.array([0, 0, 0, 1, 1])
    out = retrieval_metrics(x, y, k=(1, 2))
    assert out["precision_at_1"] == 1.0 and out["map_at_r"] == 1.0
    assert out["recall_at_2"] == 1.0  # one hit in the top 2 is enough


def test_singleton_classes_are_left_out_with_a_warning() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    with pytest.warns(UserWarning, match="1 of 3 queries"):
        out = retrieval_metrics(x, np.array([0, 0, 1]))
    assert out["precision_at_1"] == 1.0


def test_single_class_retrieval_is_trivially_perfect() -> None:
    x = np.random.default_rng(0).normal(size=(10, 3))
    assert retrieval_metrics(x, np.zeros(10, dtype=np.int64))["map_at_r"] == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_clustering_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=120)
    x = rng.normal(size=(120, 6)) + 2.0 * np.eye(6)[y]
    got = clustering_metrics(x, y, seed=seed, metric="l2")
    pred = KMeans(n_clusters=4, n_init=3, random_state=seed).fit_predict(x)
    assert got["nmi"] == pytest.approx(normalized_mutual_info_score(y, pred))
    assert got["ami"] == pytest.approx(adjusted_mutual_info_score(y, pred))
    assert clustering_metrics(x, y) == clustering_metrics(torch.from_numpy(x), y)


def test_bad_inputs_raise_clear_errors() -> None:
    x = np.random.default_rng(0).normal(size=(6, 3))
    y = np.array([0, 0, 1, 1, 2, 2])
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"query_emb must be finite.*\(2, 1\)"):
        retrieval_metrics(bad, y)
    with pytest.raises(ValueError, match=r"emb must be finite"):
        clustering_metrics(bad, y)
    with pytest.raises(ValueError, match=r"query_labels must have shape \(6,\).*got \(5,\)"):
        retrieval_metrics(x, y[:5])
    with pytest.raises(ValueError, match=r"gallery_emb must have the queries' dim 3, got 2"):
        retrieval_metrics(x, y, x[:, :2], y)
    with pytest.raises(ValueError, match="gallery_labels is required"):
        retrieval_metrics(x, y, x)
    with pytest.raises(ValueError, match=r"must have shape \(n, dim\)"):
        retrieval_metrics(x[0], y[:1])
    with pytest.raises(ValueError, match="metric must be one of cos, ip, l2; got 'dot'"):
        retrieval_metrics(x, y, metric="dot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        retrieval_metrics(x, y, k=(0,))
    with pytest.raises(TypeError, match="integer class labels"):
        retrieval_metrics(x, y.astype(float))
    with pytest.raises(ValueError, match="no query has a same-class item"):
        retrieval_metrics(x, np.arange(6))
    with pytest.raises(ValueError, match="labels must contain at least 2 classes, got 1"):
        clustering_metrics(x, np.zeros(6, dtype=np.int64))
