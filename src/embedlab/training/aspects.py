"""Aspect embeddings: one learned projection per aspect on top of frozen document vectors.

Paper: Ostendorff et al., "Specialized Document Embeddings for Aspect-based Similarity of
Research Papers" (JCDL 2022). A document is represented not by one generic embedding but by
one embedding per aspect (there: task, method, dataset of a paper); aspect similarity is the
cosine in that aspect's space. Their best model (Siamese SciBERT) fine-tunes one encoder per
aspect with sentence-transformers' ``MultipleNegativesRankingLoss`` on the aspect's positive
document pairs only: InfoNCE over cosine similarities with in-batch negatives (scale 20, i.e.
temperature 0.05); train and test documents are disjoint.

Here the encoder is frozen (e.g. MiniLM vectors from :func:`embedlab.embed_texts`) and each
aspect learns a linear map ``W_a`` (``(out_dim, dim)``, the identity at the start when
``out_dim == dim``, so training starts from the generic embedding): ``e_a(x) = W_a x /
||W_a x||``. The loss per aspect is :func:`aspect_infonce`: for a batch of positive pairs
``(a_i, p_i)``, ``-log softmax_j(cos(e(a_i), e(p_j)) / tau)[i]``, made symmetric (the ``p ->
a`` direction too) and with in-batch *false negatives* (``p_j`` a known positive of ``a_i``,
or the same document) left out of the denominator.

:meth:`AspectModel.transform` gives ``{aspect: (n, out_dim)}``, which
:class:`~embedlab.index.MultiAspectIndex` takes as is (:meth:`AspectModel.build_index`).
:func:`aspect_ndcg` scores an embedding against an aspect's graded ground truth.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from embedlab._io import atomic_write
from embedlab._validation import check_int, check_positive_float, check_vectors
from embedlab.index import F32, l2_normalize
from embedlab.index.aspects import MultiAspectIndex

__all__ = ["AspectModel", "aspect_infonce", "aspect_ndcg", "train_aspects"]

_FORMAT = "embedlab.aspects/1"


def aspect_infonce(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    *,
    temperature: float = 0.05,
    false_negatives: torch.Tensor | None = None,
    symmetric: bool = True,
) -> torch.Tensor:
    """InfoNCE with in-batch negatives over cosine similarities (MultipleNegativesRanking).

    Args:
        anchors: ``(batch, d)`` embeddings of the first document of each positive pair.
        positives: ``(batch, d)`` embeddings of the second document.
        temperature: divides the cosines (0.05 = sentence-transformers' scale 20).
        false_negatives: ``(batch, batch)`` bool; ``[i, j]`` True leaves ``positives[j]``
            out of anchor ``i``'s denominator (and, transposed, ``anchors[i]`` out of
            ``positives[j]``'s). The diagonal is ignored.
        symmetric: also the ``positives -> anchors`` direction; the loss is the mean of both.

    Returns:
        Scalar: mean over pairs of ``-log e^{s_ii} / sum_{j kept} e^{s_ij}``.
    """
    if anchors.ndim != 2 or anchors.shape != positives.shape:
        raise ValueError(
            f"anchors and positives must both have shape (batch, d), got "
            f"{tuple(anchors.shape)} and {tuple(positives.shape)}"
        )
    check_positive_float("temperature", temperature)
    b = anchors.shape[0]
    logits = F.normalize(anchors, dim=1) @ F.normalize(positives, dim=1).T / temperature
    if false_negatives is not None:
        if false_negatives.shape != (b, b) or false_negatives.dtype != torch.bool:
            raise ValueError(
                f"false_negatives must be a bool tensor of shape ({b}, {b}), got "
                f"{false_negatives.dtype} {tuple(false_negatives.shape)}"
            )
        drop = false_negatives & ~torch.eye(b, dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(drop, float("-inf"))
    target = torch.arange(b, device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, target)) / 2
    return loss


@dataclass
class AspectModel:
    """Trained aspect projections.

    Args:
        projections: ``{aspect: (out_dim, dim)}`` float32 maps, in aspect order.
        history: per aspect, the mean loss of each epoch.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(40, 8)).astype("float32")
        >>> pairs = {"a": np.array([[0, 1], [2, 3], [4, 5]]), "b": np.array([[0, 2], [1, 3]])}
        >>> model = train_aspects(x, pairs, epochs=2, batch_size=2)
        >>> {k: v.shape for k, v in model.transform(x).items()}
        {'a': (40, 8), 'b': (40, 8)}
        >>> model.build_index(x).search(model.transform(x[:1]), 3, aspect="b")[1].shape
        (1, 3)
    """

    projections: dict[str, F32]
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def aspects(self) -> list[str]:
        """Aspect names, in order."""
        return list(self.projections)

    @property
    def dim(self) -> int:
        """Input vector dimension."""
        return int(next(iter(self.projections.values())).shape[1])

    def out_dims(self) -> dict[str, int]:
        """``{aspect: out_dim}``, the ``aspects`` argument of :class:`MultiAspectIndex`."""
        return {a: int(w.shape[0]) for a, w in self.projections.items()}

    def transform(self, vectors: Any, aspects: Sequence[str] | None = None) -> dict[str, F32]:
        """``{aspect: (n, out_dim)}`` L2-normalised aspect embeddings of ``vectors (n, dim)``."""
        x = check_vectors("vectors", vectors, self.dim)
        names = self.aspects if aspects is None else list(aspects)
        for name in names:
            if name not in self.projections:
                raise ValueError(f"aspect must be one of {self.aspects}, got {name!r}")
        return {a: l2_normalize(x @ self.projections[a].T) for a in names}

    def build_index(self, vectors: Any, *, spec: str = "Flat", ids: Any = None) -> MultiAspectIndex:
        """A cosine :class:`MultiAspectIndex` holding every aspect's embedding of ``vectors``."""
        docs = self.transform(vectors)
        index = MultiAspectIndex(self.out_dims(), spec=spec, metric="cos")
        index.train(docs)
        index.add(docs, ids)
        return index

    def save(self, path: str | Path) -> Path:
        """Write the projections to one ``.npz`` (no pickle; aspect names in a JSON entry)."""
        meta = json.dumps({"format": _FORMAT, "aspects": self.aspects, "history": self.history})
        arrays: dict[str, np.ndarray] = {
            f"w{i}": w for i, w in enumerate(self.projections.values())
        }
        arrays["meta"] = np.frombuffer(meta.encode(), dtype=np.uint8)

        def write(f: Any) -> None:
            np.savez(f, **arrays)  # type: ignore[arg-type]

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> AspectModel:
        """Read a model written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") != _FORMAT:
                raise ValueError(f"path must be an aspect model ({_FORMAT}), got {path}")
            projections = {
                str(a): np.asarray(z[f"w{i}"], dtype=np.float32)
                for i, a in enumerate(meta["aspects"])
            }
        return cls(projections, {str(k): list(v) for k, v in meta["history"].items()})


def _check_pairs(name: str, value: Any, n: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(value)
    if arr.ndim != 2 or arr.shape[1] != 2 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be integer row pairs of shape (p, 2), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one positive pair, got 0")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(
            f"{name} must be rows of vectors in [0, {n}), got {arr.min()}..{arr.max()}"
        )
    if (arr[:, 0] == arr[:, 1]).any():
        i = int(np.argmax(arr[:, 0] == arr[:, 1]))
        raise ValueError(f"{name} must pair two different rows, got pair {i}: {arr[i].tolist()}")
    return arr.astype(np.int64)


def train_aspects(
    vectors: Any,
    positives: Mapping[str, Any],
    *,
    out_dim: int | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    temperature: float = 0.05,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    symmetric: bool = True,
    mask_false_negatives: bool = True,
    seed: int = 0,
) -> AspectModel:
    """Train one linear projection per aspect from that aspect's positive pairs.

    Args:
        vectors: frozen document vectors ``(n, dim)`` (e.g. MiniLM).
        positives: ``{aspect: (p, 2)}`` row pairs of documents similar in that aspect
            (order of pairs is free; each pair is used once per epoch).
        out_dim: aspect embedding size (default ``dim``: the map starts as the identity;
            otherwise a seeded orthogonal init).
        epochs: passes over each aspect's pairs.
        batch_size: pairs per step (the other pairs of the batch are the negatives).
        temperature: InfoNCE temperature.
        lr, weight_decay: AdamW settings.
        symmetric: loss in both pair directions.
        mask_false_negatives: leave in-batch documents that are known positives of the
            anchor (or the same document) out of its negatives.
        seed: seeds the init and the batch order.

    Returns:
        An :class:`AspectModel` with the maps in ``positives``' order.
    """
    x = check_vectors("vectors", vectors, np.asarray(vectors).shape[-1])
    n, dim = x.shape
    if not isinstance(positives, Mapping) or not positives:
        raise ValueError(
            f"positives must be a non-empty {{aspect: pairs}} mapping, got {positives!r}"
        )
    pairs = {}
    for name, value in positives.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"aspect names must be non-empty strings, got {name!r}")
        pairs[name] = _check_pairs(f"positives[{name!r}]", value, n)
    out = dim if out_dim is None else check_int("out_dim", out_dim, min_value=1)
    check_int("epochs", epochs, min_value=0)
    check_int("batch_size", batch_size, min_value=2)
    check_positive_float("temperature", temperature)
    check_positive_float("lr", lr)
    check_positive_float("weight_decay", weight_decay, strict=False)
    check_int("seed", seed, min_value=0)

    xt = torch.from_numpy(x)
    projections: dict[str, F32] = {}
    history: dict[str, list[float]] = {}
    for a_i, (name, pa) in enumerate(pairs.items()):
        gen = torch.Generator().manual_seed(seed * 1009 + a_i)
        w = torch.empty(out, dim)
        if out == dim:
            torch.nn.init.eye_(w)
        else:
            torch.nn.init.orthogonal_(w, generator=gen)
        w = torch.nn.Parameter(w)
        opt = torch.optim.AdamW([w], lr=lr, weight_decay=weight_decay)
        keys = np.unique(np.concatenate([pa[:, 0] * n + pa[:, 1], pa[:, 1] * n + pa[:, 0]]))
        known = torch.from_numpy(keys)  # sorted keys a * n + b of positive (a, b), both ways
        pt = torch.from_numpy(pa)
        history[name] = []
        for _ in range(epochs):
            losses = []
            for b in torch.randperm(pt.shape[0], generator=gen).split(batch_size):  # type: ignore[no-untyped-call]
                if b.shape[0] < 2:
                    continue  # one pair has no in-batch negative
                left, right = pt[b, 0], pt[b, 1]
                fn = _false_negatives(left, right, known, n) if mask_false_negatives else None
                loss = aspect_infonce(
                    xt[left] @ w.T,
                    xt[right] @ w.T,
                    temperature=temperature,
                    false_negatives=fn,
                    symmetric=symmetric,
                )
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                losses.append(float(loss.detach()))
            history[name].append(float(np.mean(losses)) if losses else math.nan)
        projections[name] = w.detach().numpy().astype(np.float32).copy()
    return AspectModel(projections, history)


def _false_negatives(
    left: torch.Tensor, right: torch.Tensor, known: torch.Tensor, n: int
) -> torch.Tensor:
    """``(B, B)`` in-batch false negatives: ``[i, j]`` when ``right[j]`` is a known positive
    of ``left[i]`` or the same document as ``left[i]`` or ``right[i]``, or ``left[j]`` is
    ``left[i]`` (so the transpose serves the ``right -> left`` direction)."""
    keys = left[:, None] * n + right[None, :]
    pos = torch.searchsorted(known, keys).clamp_max(known.numel() - 1)
    same = (left[:, None] == right[None, :]) | (right[:, None] == right) | (left[:, None] == left)
    return (known[pos] == keys) | same


def aspect_ndcg(vectors: Any, gains: Any, *, k: int = 10, queries: Any = None) -> float:
    """Mean nDCG@k of cosine ranking against graded relevance, each document a query.

    Args:
        vectors: ``(n, d)`` embeddings of the documents (ranked by cosine, self excluded).
        gains: ``(n, n)`` relevance of document ``j`` to query ``i`` (>= 0; the diagonal is
            ignored). DCG = sum gain / log2(rank + 1); the ideal uses the ``k`` largest gains.
        k: cut-off.
        queries: optional rows to use as queries (default all).

    Returns:
        The mean over queries with a positive ideal DCG (NaN when none has one).
    """
    x = check_vectors("vectors", vectors, np.asarray(vectors).shape[-1])
    n = x.shape[0]
    g = np.asarray(gains, dtype=np.float64)
    if g.shape != (n, n):
        raise ValueError(f"gains must have shape ({n}, {n}) to match vectors, got {g.shape}")
    if not np.isfinite(g).all() or (g < 0).any():
        raise ValueError("gains must be finite and >= 0")
    k = check_int("k", k, min_value=1)
    rows = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    xn = l2_normalize(x).astype(np.float64)
    s = xn[rows] @ xn.T
    s[np.arange(rows.size), rows] = -np.inf
    g = g[rows].copy()
    g[np.arange(rows.size), rows] = 0.0
    kk = min(k, n - 1)
    disc = 1.0 / np.log2(np.arange(2, kk + 2))
    top = np.argsort(-s, axis=1, kind="stable")[:, :kk]
    dcg = (np.take_along_axis(g, top, axis=1) * disc).sum(1)
    ideal = (-np.sort(-g, axis=1)[:, :kk] * disc).sum(1)
    ok = ideal > 0
    return float(np.mean(dcg[ok] / ideal[ok])) if ok.any() else math.nan
