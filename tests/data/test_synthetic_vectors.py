"""The synthetic retrieval source: deterministic, clustered, anisotropic, cached, bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.data import load_retrieval
from embedlab.data.synthetic_vectors import make_clustered_vectors, parse_synthetic_options


def test_source_is_seeded_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path))
    a = load_retrieval("synthetic:n=3000,dim=16,clusters=20", n_holdout=50)
    b = load_retrieval("synthetic:n=3000,dim=16,clusters=20", n_holdout=50)
    assert not a.corpus.flags.owndata and a.corpus.shape == (3000, 16)  # mapped, not copied
    np.testing.assert_array_equal(a.corpus, b.corpus)
    np.testing.assert_array_equal(a.holdout, b.holdout)
    assert a.holdout is not None and a.holdout.shape == (50, 16)
    assert len(a.corpus_ids) == 3000 and a.corpus_ids[2999] == "2999"
    assert len(list(tmp_path.rglob("*.npy"))) == 1  # one cached corpus file
    other = load_retrieval("synthetic:n=3000,dim=16,clusters=20", n_holdout=50, seed=1)
    assert not np.array_equal(a.holdout, other.holdout)  # seed picks the queries


def test_mixture_is_clustered_and_anisotropic(tmp_path: Path) -> None:
    spec = parse_synthetic_options("n=4000,dim=32,clusters=8,seed=3")
    x = np.asarray(make_clustered_vectors(spec, tmp_path))
    centred = x - x.mean(axis=0)
    eig = np.linalg.eigvalsh(np.cov(centred.T))
    assert eig[-1] / eig[0] > 5  # far from isotropic
    # nearest neighbours are much closer than random pairs (clusters)
    d = np.linalg.norm(x[:200, None] - x[None, :2000], axis=-1)
    d[np.arange(200), np.arange(200)] = np.inf
    assert np.median(d.min(axis=1)) < 0.5 * np.median(d)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dim=8", r"needs n= and dim="),
        ("n=10,dim=8,colour=3", r"keys n, dim, clusters, seed, spread"),
        ("n=ten,dim=8", r"synthetic option n must be a number, got 'ten'"),
        ("n=10,dim=0", r"dim must be >= 1, got 0"),
        ("n=10,dim=8,clusters=20", r"clusters must be <= n \(10\), got 20"),
    ],
)
def test_bad_options(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_synthetic_options(text)
