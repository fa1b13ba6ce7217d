"""BiDR training: contrastively trained PQ codes (first stage) + a dense stage trained on the
PQ shortlist (second stage), served as a ``PQ{m},Rerank(Flat)`` index.

Paper: Xiao et al., "Progressively Optimized Bi-Granular Document Representation for Scalable
Embedding Based Retrieval" (BiDR, WWW 2022). The paper trains two encoders progressively:
first the compact (PQ) embedding with *contrastive quantisation* (the loss is on the quantised
document, so the codes are trained for ranking, not for reconstruction), then the dense
embedding with hard negatives drawn from the candidates the compact stage returns. Here the
document vectors are fixed (e.g. MiniLM), so:

- **stage 1** learns the PQ codebooks ``(m, 2^nbits, dim / m)`` by differentiable PQ:
  a straight-through assignment (hard nearest centroid forward, softmax(-d^2 / tau_assign)
  gradient) and an InfoNCE loss between queries and *quantised* positives against quantised
  negatives (hard negatives from the current PQ shortlist plus random documents), plus a small
  reconstruction term that keeps the centroids near the data. Initialised from faiss' k-means
  PQ.
- **stage 2** learns a document-side linear map ``W`` (``dim x dim``, initialised to the
  identity) for the re-ranking vectors ``W x`` (normalised for ``cos``), with InfoNCE where
  each query's negatives are the non-positive documents of its PQ shortlist (``k * k_factor``
  candidates).

``BiDRModel.build_index(corpus)`` gives a :class:`~embedlab.index.rerank.Rerank` over a
:class:`~embedlab.index.pq.PQ` holding the trained codebooks; the re-ranking file holds
``W x`` (``x`` itself when ``W`` is the identity).

Supervision: ``queries (n_q, dim)`` with ``positives (n_q, p)`` document rows. When labelled
queries are scarce, :func:`pseudo_queries` turns corpus rows into queries whose positives are
their exact nearest neighbours (the row itself excluded) — what we use on DBpedia, which has
only 50 judged queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from embedlab._validation import check_choice, check_int, check_positive_float, check_vectors
from embedlab.index import F32, Metric, l2_normalize
from embedlab.index.pq import PQ
from embedlab.index.rerank import Rerank

__all__ = ["BiDRModel", "pseudo_queries", "train_bidr"]


def pseudo_queries(
    corpus: np.ndarray, *, n_queries: int, k: int = 10, metric: Metric = "cos", seed: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Corpus rows as queries, with their exact top-``k`` neighbours (self excluded) as positives.

    Returns ``(rows (n_queries,), positives (n_queries, k))`` row positions into ``corpus``.
    """
    metric = check_choice("metric", metric, ("cos", "ip", "l2"))  # type: ignore[assignment]
    x = check_vectors("corpus", corpus, np.asarray(corpus).shape[-1])
    n = x.shape[0]
    n_queries = check_int("n_queries", n_queries, min_value=1)
    k = check_int("k", k, min_value=1)
    if n_queries > n or k >= n:
        raise ValueError(
            f"n_queries must be <= n_docs and k < n_docs, got n_queries={n_queries}, k={k}, "
            f"n_docs={n}"
        )
    x = l2_normalize(x) if metric == "cos" else x
    rows = np.sort(np.random.default_rng(seed).choice(n, n_queries, replace=False))
    s = _scores(x[rows].astype(np.float64), x.astype(np.float64), metric)
    s[np.arange(n_queries), rows] = -np.inf
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return rows.astype(np.int64), top.astype(np.int64)


def _scores(q: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    s: np.ndarray = q @ x.T
    if metric == "l2":
        s = 2 * s - (q * q).sum(1)[:, None] - (x * x).sum(1)[None, :]
    return s


@dataclass
class BiDRModel:
    """Trained BiDR stages.

    Args:
        codebooks: PQ centroids ``(m, 2^nbits, dim / m)`` float32 (stage 1).
        projection: document-side map ``(dim, dim)`` float32 of the re-ranking vectors
            ``x @ projection.T`` (stage 2; the identity when stage 2 did not run).
        metric: the index metric.
        history: per-epoch mean losses, ``{"pq": [...], "dense": [...]}``.
    """

    codebooks: F32
    projection: F32
    metric: Metric = "cos"
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def m(self) -> int:
        """Number of sub-quantisers (bytes per code at 8 bits)."""
        return int(self.codebooks.shape[0])

    @property
    def nbits(self) -> int:
        """Bits per sub-quantiser code."""
        return int(np.log2(self.codebooks.shape[1]))

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.codebooks.shape[0] * self.codebooks.shape[2])

    def rerank_vectors(self, corpus: np.ndarray) -> F32:
        """The second-stage document vectors ``W x`` (for ``cos``, ``x`` and ``W x`` are
        L2-normalised: the dense stage scores by cosine)."""
        x = check_vectors("corpus", corpus, self.dim)
        x = l2_normalize(x) if self.metric == "cos" else x
        out: F32 = np.ascontiguousarray(x @ self.projection.T, dtype=np.float32)
        return l2_normalize(out) if self.metric == "cos" else out

    def build_index(self, corpus: np.ndarray, *, k_factor: int = 10) -> Rerank:
        """A ``PQ{m},Rerank(Flat)`` index over ``corpus``: codes from the trained codebooks,
        re-ranking vectors from the dense stage."""
        pq = PQ(self.dim, m=self.m, nbits=self.nbits, metric=self.metric)
        pq.set_codebooks(self.codebooks)
        index = Rerank(self.dim, metric=self.metric, base=pq, k_factor=k_factor)
        if np.array_equal(self.projection, np.eye(self.dim, dtype=np.float32)):
            index.add(corpus)
        else:
            index.add_rescored(corpus, self.rerank_vectors(corpus))
        return index


def _quantise(xs: torch.Tensor, cb: torch.Tensor, tau: float) -> torch.Tensor:
    """Straight-through PQ: ``xs (n, m, dsub)`` -> reconstructions ``(n, m * dsub)``."""
    d2 = (xs * xs).sum(-1, keepdim=True) - 2 * torch.einsum("nmd,mkd->nmk", xs, cb)
    d2 = d2 + (cb * cb).sum(-1)[None]
    soft = torch.softmax(-d2 / tau, dim=-1)
    hard = F.one_hot(d2.argmin(-1), cb.shape[1]).to(xs.dtype)
    w = hard + soft - soft.detach()
    return torch.einsum("nmk,mkd->nmd", w, cb).reshape(xs.shape[0], -1)


@torch.no_grad()
def _decode_all(xs: torch.Tensor, cb: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    out = []
    for s in range(0, xs.shape[0], chunk):
        part = xs[s : s + chunk]
        d2 = -2 * torch.einsum("nmd,mkd->nmk", part, cb) + (cb * cb).sum(-1)[None]
        codes = d2.argmin(-1)  # (c, m)
        out.append(cb[torch.arange(cb.shape[0])[None], codes].reshape(part.shape[0], -1))
    return torch.cat(out)


def _sim(q: torch.Tensor, x: torch.Tensor, metric: str) -> torch.Tensor:
    s = q @ x.T
    if metric == "l2":
        s = 2 * s - (q * q).sum(1, keepdim=True) - (x * x).sum(1)[None]
    return s


def _infonce(logits: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
    """Mean over (query, positive) of -log e^{s_p} / (e^{s_p} + sum_neg e^{s_n})."""
    neg = torch.logsumexp(logits.masked_fill(~neg_mask, float("-inf")), dim=1, keepdim=True)
    per = logits - torch.logaddexp(logits, neg)
    return -(per * pos_mask).sum() / pos_mask.sum().clamp_min(1)


def train_bidr(
    corpus: np.ndarray,
    queries: np.ndarray,
    positives: np.ndarray,
    *,
    m: int,
    nbits: int = 8,
    metric: Metric = "cos",
    query_rows: np.ndarray | None = None,
    pq_epochs: int = 5,
    dense_epochs: int = 0,
    k: int = 10,
    k_factor: int = 10,
    batch_size: int = 64,
    n_random: int = 256,
    n_hard: int = 64,
    temperature: float = 0.05,
    assign_temperature: float = 0.01,
    recon_weight: float = 1.0,
    lr: float = 1e-4,
    seed: int = 0,
) -> BiDRModel:
    """Train BiDR's two stages on fixed document vectors (see the module docstring).

    Args:
        corpus: documents ``(n, dim)``.
        queries: ``(n_q, dim)`` training queries.
        positives: ``(n_q, p)`` row positions into ``corpus`` of each query's positives.
        m: sub-quantisers (bytes per code at 8 bits); must divide ``dim``.
        nbits: bits per sub-quantiser code.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        query_rows: ``(n_q,)`` corpus row of each query when queries are corpus rows
            (pseudo-queries): that row is never a negative.
        pq_epochs: stage-1 epochs (0 keeps faiss' k-means codebooks).
        dense_epochs: stage-2 epochs (0 keeps the identity map).
        k, k_factor: stage 2's shortlist is the PQ top ``k * k_factor``.
        batch_size: queries per step.
        n_random, n_hard: stage 1's random and shortlist (hard) negatives per step.
        temperature: InfoNCE temperature; assign_temperature: soft-assignment temperature.
        recon_weight: weight of the reconstruction MSE in stage 1 (relative to InfoNCE).
        lr: Adam learning rate.
        seed: seeds faiss' k-means and the sampling.
    """
    metric = check_choice("metric", metric, ("cos", "ip", "l2"))  # type: ignore[assignment]
    x = check_vectors("corpus", corpus, np.asarray(corpus).shape[-1])
    dim, n = x.shape[1], x.shape[0]
    q = check_vectors("queries", queries, dim)
    pos = np.asarray(positives)
    if pos.ndim != 2 or pos.shape[0] != q.shape[0] or pos.dtype.kind not in "iu":
        raise ValueError(
            f"positives must be integer rows of shape ({q.shape[0]}, p), got {pos.dtype} "
            f"{pos.shape}"
        )
    if pos.size and (pos.min() < 0 or pos.max() >= n):
        raise ValueError(f"positives must be corpus rows in [0, {n}), got {pos.min()}..{pos.max()}")
    for name, v in (("pq_epochs", pq_epochs), ("dense_epochs", dense_epochs)):
        check_int(name, v, min_value=0)
    for name, v in (("batch_size", batch_size), ("k", k), ("k_factor", k_factor)):
        check_int(name, v, min_value=1)
    check_int("n_random", n_random, min_value=0)
    check_int("n_hard", n_hard, min_value=0)
    for name, f in (("temperature", temperature), ("assign_temperature", assign_temperature)):
        check_positive_float(name, f)
    check_positive_float("lr", lr)
    check_positive_float("recon_weight", recon_weight, strict=False)
    if metric == "cos":
        x, q = l2_normalize(x), l2_normalize(q)
    rows = None if query_rows is None else np.asarray(query_rows, dtype=np.int64)
    if rows is not None and rows.shape != (q.shape[0],):
        raise ValueError(f"query_rows must have shape ({q.shape[0]},), got {rows.shape}")

    pq = PQ(dim, m=m, nbits=nbits, metric=metric, seed=seed)
    pq.train(x)
    gen = torch.Generator().manual_seed(seed)
    xt, qt = torch.from_numpy(x), torch.from_numpy(q)
    pos_t = torch.from_numpy(pos.astype(np.int64))
    self_t = None if rows is None else torch.from_numpy(rows)
    cb = torch.nn.Parameter(torch.from_numpy(pq.codebooks.copy()))
    xs = xt.reshape(n, pq.m, -1)
    history: dict[str, list[float]] = {"pq": [], "dense": []}

    opt = torch.optim.Adam([cb], lr=lr)
    for _ in range(pq_epochs):
        decoded = _decode_all(xs, cb.detach())
        losses = []
        for b in torch.randperm(q.shape[0], generator=gen).split(batch_size):  # type: ignore[no-untyped-call]
            qb = qt[b]
            with torch.no_grad():
                s = _sim(qb, decoded, metric)
                _exclude(s, b, pos_t, self_t)
                hard = s.topk(min(n_hard, n - 1), dim=1).indices.reshape(-1) if n_hard else None
            parts = [pos_t[b].reshape(-1), torch.randint(n, (n_random,), generator=gen)]
            cand = torch.unique(torch.cat(parts + ([hard] if hard is not None else [])))
            xhat = _quantise(xs[cand], cb, assign_temperature)
            logits = _sim(qb, xhat, metric) / temperature
            pos_mask, neg_mask = _masks(b, cand, pos_t, self_t)
            loss = _infonce(logits, pos_mask, neg_mask)
            loss = loss + recon_weight * ((xhat - xt[cand]) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            losses.append(float(loss.detach()))
        history["pq"].append(float(np.mean(losses)))
    codebooks = cb.detach().numpy().astype(np.float32).copy()

    w = torch.nn.Parameter(torch.eye(dim))
    decoded = _decode_all(xs, torch.from_numpy(codebooks))
    opt = torch.optim.Adam([w], lr=lr)
    n_cand = min(k * k_factor, n - 1)
    for _ in range(dense_epochs):
        losses = []
        for b in torch.randperm(q.shape[0], generator=gen).split(batch_size):  # type: ignore[no-untyped-call]
            qb = qt[b]
            with torch.no_grad():
                s = _sim(qb, decoded, metric)
                _exclude(s, b, None, self_t)
                short = s.topk(n_cand, dim=1).indices  # (B, n_cand): the PQ shortlist
            cand = torch.unique(torch.cat([short.reshape(-1), pos_t[b].reshape(-1)]))
            dense = xt[cand] @ w.T
            dense = F.normalize(dense, dim=1) if metric == "cos" else dense
            logits = _sim(qb, dense, metric) / temperature
            pos_mask, neg_mask = _masks(b, cand, pos_t, self_t)
            in_short = (cand[None, :, None] == short[:, None, :]).any(-1)
            loss = _infonce(logits, pos_mask, neg_mask & in_short)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            losses.append(float(loss.detach()))
        history["dense"].append(float(np.mean(losses)))
    projection = w.detach().numpy().astype(np.float32).copy()
    return BiDRModel(codebooks, projection, metric, history)


def _exclude(
    s: torch.Tensor, b: torch.Tensor, pos_t: torch.Tensor | None, self_t: torch.Tensor | None
) -> None:
    """Set the scores of each query's own row (and positives, if given) to -inf in place."""
    ar = torch.arange(b.shape[0])
    if self_t is not None:
        s[ar, self_t[b]] = float("-inf")
    if pos_t is not None:
        s[ar[:, None], pos_t[b]] = float("-inf")


def _masks(
    b: torch.Tensor, cand: torch.Tensor, pos_t: torch.Tensor, self_t: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, c)`` masks of each query's positives and negatives among candidate rows."""
    pos_mask = (cand[None, :, None] == pos_t[b][:, None, :]).any(-1)
    neg_mask = ~pos_mask
    if self_t is not None:
        neg_mask &= cand[None, :] != self_t[b][:, None]
    return pos_mask, neg_mask
