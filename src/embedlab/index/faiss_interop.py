"""``to_faiss`` / ``from_faiss``: move an index between embedlab and faiss without re-training.

Supported pairs (embedlab <-> faiss):

- ``Flat`` <-> ``IndexFlatIP`` / ``IndexFlatL2``
- ``PQ{m}`` <-> ``IndexPQ``
- ``HNSW{M}`` (Flat code) <-> ``IndexHNSWFlat``
- ``IVF{nlist},Flat`` <-> ``IndexIVFFlat`` (same centroids, same lists)
- ``IVF{nlist},PQ{m}`` (8-bit codes) <-> ``IndexIVFPQ`` (by residual; same centroids,
  codebooks, codes and list assignment, so no vector is re-encoded)

``IVF…,Binary`` has no faiss equivalent: faiss' binary IVF indexes score by Hamming distance
between sign codes, while embedlab's default scores the float query against the codes
(``scoring="asym"``); ``Rerank(…)`` stages are dropped by neither side (faiss'
``IndexRefineFlat`` holds its vectors in RAM, embedlab's in a memory-mapped file).

``to_faiss`` wraps the result in ``IndexIDMap2`` so faiss returns embedlab's ids;
``from_faiss`` reads the ids of an ``IndexIDMap`` / ``IndexIDMap2`` (else ``0..n-1``).

Score conventions differ: embedlab returns *higher-is-better* scores for every metric
(``"l2"`` gives NEGATIVE squared distances); faiss returns squared L2 distances
(lower is better) for ``METRIC_L2`` and dot products for ``METRIC_INNER_PRODUCT``. faiss
knows nothing of ``metric="cos"``: the exported index holds the unit vectors embedlab
stored, and its queries must be L2-normalised by the caller (``faiss.normalize_L2``).
``from_faiss`` maps ``METRIC_INNER_PRODUCT`` to ``"ip"`` (pass ``metric="cos"`` if the
stored vectors are unit vectors) and ``METRIC_L2`` to ``"l2"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embedlab.index._base import IdMap, Metric, VectorIndex
from embedlab.index._faiss_blob import faiss_to_blob
from embedlab.index.flat import Flat
from embedlab.index.hnsw import HNSW
from embedlab.index.ivf import IVF
from embedlab.index.pq import PQ

__all__ = ["from_faiss", "to_faiss"]

_SUPPORTED = "Flat, PQ{m}, HNSW{M} (Flat code), IVF{nlist},Flat, IVF{nlist},PQ{m} (8 bits)"


def _faiss_metric(metric: Metric) -> int:
    return int(faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)


def _with_ids(index: Any, ids: np.ndarray) -> Any:
    """``IndexIDMap2`` over the filled ``index`` (faiss' constructor wants it empty)."""
    n = int(index.ntotal)
    wrapped = faiss.IndexIDMap2(faiss.IndexFlat(index.d, index.metric_type))
    wrapped.index = index
    wrapped.own_fields = True
    index.this.disown()
    faiss.copy_array_to_vector(np.ascontiguousarray(ids, dtype=np.int64), wrapped.id_map)
    wrapped.ntotal = n
    wrapped.construct_rev_map()
    return wrapped


def to_faiss(index: VectorIndex) -> Any:
    """A faiss index holding the same vectors or codes as ``index``, with its ids.

    Raises:
        TypeError: ``index`` has no faiss equivalent (the message lists the supported ones).
    """
    ids = np.asarray(index.ids)
    if type(index) is Flat:
        flat = faiss.IndexFlat(index.dim, _faiss_metric(index.metric))
        flat.add(np.ascontiguousarray(index.vectors, dtype=np.float32))
        return _with_ids(flat, ids)
    if type(index) is PQ:
        return _with_ids(faiss.clone_index(index._index), ids)
    if isinstance(index, HNSW) and index.code_name == "Flat":
        if index.n_rows != index.ntotal:
            raise ValueError(
                f"{index.spec()} holds {index.n_rows - index.ntotal} removed rows not yet "
                "compacted; faiss' HNSW cannot mark them: save and load it, or rebuild"
            )
        return _with_ids(faiss.clone_index(index.faiss_index), ids)
    if isinstance(index, IVF) and type(index.code) is Flat:
        return _with_ids(_ivf_to_faiss(index, None), ids)
    if isinstance(index, IVF) and type(index.code) is PQ and index.code.nbits == 8:
        return _with_ids(_ivf_to_faiss(index, index.code), ids)
    raise TypeError(f"to_faiss supports {_SUPPORTED}; got {index.spec()}")


def _ivf_to_faiss(index: IVF, pq: PQ | None) -> Any:
    """``IndexIVFFlat`` (``pq`` None) or ``IndexIVFPQ`` holding ``index``'s lists as they are."""
    metric = _faiss_metric(index.metric)
    quantizer: Any = faiss.IndexFlat(index.dim, metric)
    quantizer.add(np.ascontiguousarray(index.centroids))
    out: Any
    if pq is None:
        out = faiss.IndexIVFFlat(quantizer, index.dim, index.nlist, metric)
    else:
        out = faiss.IndexIVFPQ(quantizer, index.dim, index.nlist, pq.m, 8, metric)
        faiss.copy_array_to_vector(pq.codebooks.ravel(), out.pq.centroids)
    out.own_fields = True
    quantizer.this.disown()
    out.is_trained = True
    if pq is not None:
        out.precompute_table()
    out.nprobe = index.nprobe
    lists = index.lists
    for lst in range(index.nlist):
        start, size = int(lists.starts[lst]), int(lists.sizes[lst])
        if size == 0:
            continue
        codes = lists.codes[start : start + size]
        codes = np.ascontiguousarray(codes if pq is None else codes[:, : pq.m]).view(np.uint8)
        rows = np.ascontiguousarray(lists.rows[start : start + size], dtype=np.int64)
        out.invlists.add_entries(lst, size, faiss.swig_ptr(rows), faiss.swig_ptr(codes))
    out.ntotal = index.ntotal
    return out


def from_faiss(faiss_index: Any, *, metric: Metric | None = None) -> VectorIndex:
    """An embedlab index with the vectors / codes and ids of ``faiss_index``.

    Args:
        faiss_index: one of ``IndexFlatIP``, ``IndexFlatL2``, ``IndexPQ``, ``IndexHNSWFlat``,
            ``IndexIVFFlat``, ``IndexIVFPQ`` (8-bit codes), optionally inside ``IndexIDMap`` /
            ``IndexIDMap2``.
        metric: override the metric read from faiss (``"cos"`` for unit vectors under
            inner product).

    Raises:
        TypeError: an index type without an embedlab equivalent.
    """
    ids = None
    inner: Any = faiss.downcast_index(faiss_index)
    if isinstance(inner, faiss.IndexIDMap | faiss.IndexIDMap2):
        ids = faiss.vector_to_array(inner.id_map).astype(np.int64)
        inner = faiss.downcast_index(inner.index)
    faiss_metric = "l2" if inner.metric_type == faiss.METRIC_L2 else "ip"
    m: Metric = metric if metric is not None else faiss_metric  # type: ignore[assignment]
    if (m == "l2" and faiss_metric != "l2") or (m != "l2" and faiss_metric == "l2"):
        raise ValueError(f"metric {m!r} does not match the faiss index's {faiss_metric!r}")
    d, n = int(inner.d), int(inner.ntotal)
    if isinstance(inner, faiss.IndexFlat):
        out: VectorIndex = Flat(d, metric=m)
        out.add(inner.reconstruct_n(0, n) if n else np.zeros((0, d), np.float32), ids=ids)
        return out
    meta: dict[str, Any]
    if isinstance(inner, faiss.IndexPQ):
        pq = inner.pq
        blob = faiss_to_blob(inner)
        meta = {"dim": d, "metric": m, "m": int(pq.M), "nbits": int(pq.nbits), "seed": 0}
        out = PQ._from_state({"faiss_index": blob}, {**meta, "ntotal": n}, _NOWHERE)
    elif isinstance(inner, faiss.IndexHNSWFlat):
        blob = faiss_to_blob(inner)
        graph: Any = inner.hnsw
        meta = {
            "dim": d,
            "metric": m,
            "M": int(graph.nb_neighbors(1)),
            "efConstruction": int(graph.efConstruction),
            "efSearch": int(graph.efSearch),
            "code": "Flat",
            "rows": n,
        }
        arrays: dict[str, np.ndarray] = {"faiss_index": blob, "dead_rows": np.zeros(0, np.int64)}
        out = HNSW._from_state(arrays, meta, _NOWHERE)
    elif isinstance(inner, faiss.IndexIVFFlat):
        return _ivf_flat_from_faiss(inner, m, ids)
    elif isinstance(inner, faiss.IndexIVFPQ):
        return _ivf_pq_from_faiss(inner, m, ids)
    else:
        raise TypeError(f"from_faiss supports faiss equivalents of {_SUPPORTED}; got {inner}")
    out._idmap = IdMap(np.arange(n, dtype=np.int64) if ids is None else ids)
    out._trained = True
    return out


def _trained_ivf(inner: Any, code: VectorIndex, metric: Metric) -> IVF:
    """What ``IVF._train`` leaves behind, with faiss' centroids instead of a new k-means."""
    d, nlist = int(inner.d), int(inner.nlist)
    centroids = faiss.downcast_index(inner.quantizer).reconstruct_n(0, nlist)
    out = IVF(d, metric=metric, code=code, nlist=nlist, nprobe=int(inner.nprobe))
    out.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    out._c_sq = np.einsum("ij,ij->i", out.centroids, out.centroids)
    out.lists = out._empty_lists()
    out._trained = True
    return out


def _ivf_pq_from_faiss(inner: Any, metric: Metric, ids: np.ndarray | None) -> VectorIndex:
    d, nlist, n = int(inner.d), int(inner.nlist), int(inner.ntotal)
    m, nbits = int(inner.pq.M), int(inner.pq.nbits)
    if nbits != 8 or not inner.by_residual:
        raise TypeError(
            f"from_faiss supports IndexIVFPQ with 8-bit codes by residual; got nbits={nbits}, "
            f"by_residual={bool(inner.by_residual)}"
        )
    flat_pq: Any = faiss.IndexPQ(d, m, 8, inner.metric_type)
    faiss.copy_array_to_vector(faiss.vector_to_array(inner.pq.centroids), flat_pq.pq.centroids)
    flat_pq.is_trained = True
    meta = {"dim": d, "metric": metric, "m": m, "nbits": 8, "seed": 0, "ntotal": 0}
    code = PQ._from_state({"faiss_index": faiss_to_blob(flat_pq)}, meta, _NOWHERE)
    code._trained = True
    out = _trained_ivf(inner, code, metric)
    codes, list_ids, list_no = [], [], []
    invlists = inner.invlists
    for lst in range(nlist):
        size = int(invlists.list_size(lst))
        if size == 0:
            continue
        raw = faiss.rev_swig_ptr(invlists.get_codes(lst), size * m)
        codes.append(np.frombuffer(bytes(raw), dtype=np.uint8).reshape(size, m))
        list_ids.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).astype(np.int64))
        list_no.append(np.full(size, lst, np.int64))
    if not codes:
        return out
    entry_ids, lists = np.concatenate(list_ids), np.concatenate(list_no)
    if ids is not None and entry_ids.max() < ids.size:  # list entries hold IDMap positions
        entry_ids = ids[entry_ids]
    order = np.argsort(entry_ids, kind="stable")
    padded = np.zeros((n, out.codec.width), np.uint8)
    padded[:, :m] = np.concatenate(codes)[order]
    lists = lists[order]
    extra: dict[str, np.ndarray] = {}
    if out._l2_terms:  # as IVF._add_block: |x_hat|^2 of the decoded vectors
        x_hat = out.codec.decode(padded, {}) + out.centroids[lists]
        extra["vbias"] = -np.einsum("ij,ij->i", x_hat, x_hat).astype(np.float32)
    out.lists.reserve(np.bincount(lists, minlength=nlist))
    out.lists.add(lists, padded, np.arange(n, dtype=np.int64), extra)
    out._idmap = IdMap(entry_ids[order])
    return out


def _ivf_flat_from_faiss(inner: Any, metric: Metric, ids: np.ndarray | None) -> VectorIndex:
    d, nlist = int(inner.d), int(inner.nlist)
    out = _trained_ivf(inner, Flat(d, metric=metric), metric)
    vecs, row_ids = [], []
    invlists = inner.invlists
    for lst in range(nlist):
        size = int(invlists.list_size(lst))
        if size == 0:
            continue
        codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * d * 4)
        vecs.append(np.frombuffer(bytes(codes), dtype=np.float32).reshape(size, d))
        row_ids.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).astype(np.int64))
    if vecs:
        x, list_ids = np.concatenate(vecs), np.concatenate(row_ids)
        if ids is not None:  # faiss' list entries hold positions of the IDMap
            list_ids = ids[list_ids] if list_ids.max() < ids.size else list_ids
        order = np.argsort(list_ids, kind="stable")
        out.add(x[order], ids=list_ids[order])
    return out


_NOWHERE = Path("<faiss>")  # the "folder" named in errors of a state read from faiss
