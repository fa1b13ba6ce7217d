"""Graph loaders: edge lists, MATLAB ``.mat`` (network / group) and Planetoid (Cora).

Every loader returns a :class:`Graph` whose ``adj`` is a symmetric ``scipy.sparse`` CSR
matrix of shape ``(n_nodes, n_nodes)``; row ``i`` of every output is node ``i``.

Edge lists (``.tsv`` / ``.csv`` / ``.txt``): one edge per line, ``u v`` or ``u v weight``,
separated by whitespace, commas or tabs; ``#`` starts a comment. Handling of bad input:

- a node id is a name, not a row number: ids are mapped to rows ``0..n-1`` and
  :attr:`Graph.node_ids` holds the original id of each row (the CLI writes it beside
  the output). When every id is a non-negative integer, rows follow the numeric order
  of the ids; when the ids are exactly ``0..n-1``, row ``i`` is node ``i`` and
  ``node_ids`` is ``None``. An id of ``10**12`` therefore costs one row, not 10**12.
  Ids are compared after dropping leading zeros (``007`` is node ``7``). Any other id
  (``alice``) maps all ids to rows in first-seen order;
- self-loops are dropped with a warning (FastRP and the graphlet counts assume none);
- duplicate edges, in either direction, are merged; with weights the last one wins;
- a line that does not parse, or bytes that are not UTF-8, raise ``ValueError`` naming
  the file and line number.

Planetoid files are Python 2 pickles; they are read with a restricted unpickler that
admits only the numpy / scipy / container types those files need, never plain pickle
(see :mod:`embedlab.graph._planetoid`).
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import scipy.sparse as sp

from embedlab._validation import check_adjacency, check_choice, check_required_keys
from embedlab.graph._edgeparse import int_rows, parse_fast
from embedlab.graph._matfile import check_mat_v5
from embedlab.graph._planetoid import (
    RestrictedUnpickler,
    build_planetoid,
    read_test_index,
    restricted_load,
)

__all__ = [
    "Graph",
    "RestrictedUnpickler",
    "load_edgelist",
    "load_graph",
    "load_mat",
    "load_planetoid",
    "restricted_load",
]

GRAPH_KINDS = ("blogcatalog", "cora", "edges", "mat", "planetoid")

_SPLIT = re.compile(r"[,\s]+")
_INT_ID = re.compile(r"[0-9]+")


@dataclass
class Graph:
    """An undirected graph with optional node labels and features.

    Attributes:
        adj: ``(n_nodes, n_nodes)`` symmetric CSR float64, no self-loops.
        labels: ``(n_nodes,)`` int64 class ids (single-label), or ``(n_nodes, n_labels)``
            int8 indicator matrix (multi-label), or ``None``.
        node_ids: original id of each row (``node_ids[i]`` is the id of row ``i``) when
            ids were mapped to rows (edge lists whose ids are not exactly ``0..n-1``),
            else ``None`` (row ``i`` is node ``i``).
        features: ``(n_nodes, n_features)`` CSR node features (Planetoid), or ``None``.
        name: short name used in benchmark records.
    """

    adj: sp.csr_matrix
    labels: np.ndarray | None = None
    node_ids: list[str] | None = None
    features: sp.csr_matrix | None = None
    name: str = "graph"

    @property
    def n_nodes(self) -> int:
        """Number of nodes (rows of ``adj``)."""
        return int(self.adj.shape[0])

    @property
    def n_edges(self) -> int:
        """Undirected edges (each stored twice in ``adj``)."""
        return int(self.adj.nnz // 2)


def _drop_self_loops(adj: sp.csr_matrix, where: str) -> sp.csr_matrix:
    n_loops = int(np.count_nonzero(adj.diagonal()))
    if n_loops:
        warnings.warn(f"{where}: dropped {n_loops} self-loop(s)", UserWarning, stacklevel=3)
        adj = sp.csr_matrix(adj - sp.diags(adj.diagonal()))
        adj.eliminate_zeros()
    return adj


def _symmetric(adj: sp.csr_matrix, where: str) -> sp.csr_matrix:
    if (adj != adj.T).nnz:
        warnings.warn(
            f"{where}: adjacency is not symmetric; using max(A, A^T)", UserWarning, stacklevel=3
        )
        adj = sp.csr_matrix(adj.maximum(adj.T))
    return adj


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(lineno, line)`` of a UTF-8 text file; a bad byte names its line."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path.name} line {lineno}: not valid UTF-8 text "
                    f"(byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None


def _rows_of_ids(src: list[str], dst: list[str]) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Rows ``(m,)`` of each edge's ends and the id of each row (``None``: ids are ``0..n-1``)."""
    if all(_INT_ID.fullmatch(t) for t in (*src, *dst)):
        # compare integers as text: no int() of a 5,000-digit id, no int64 overflow
        src = [t.lstrip("0") or "0" for t in src]
        dst = [t.lstrip("0") or "0" for t in dst]
        ids = sorted(set(src) | set(dst), key=lambda t: (len(t), t))  # numeric order
        dense = ids[-1] == str(len(ids) - 1)  # distinct non-negative ints up to n-1: 0..n-1
    else:
        ids = list(dict.fromkeys(t for pair in zip(src, dst, strict=True) for t in pair))
        dense = False
    row = {t: i for i, t in enumerate(ids)}
    u = np.fromiter((row[t] for t in src), dtype=np.int64, count=len(src))
    v = np.fromiter((row[t] for t in dst), dtype=np.int64, count=len(dst))
    return u, v, (None if dense else ids)


def load_edgelist(path: str | Path) -> Graph:
    """Read an edge list (see the module docstring for the format and bad-input handling).

    Args:
        path: text file with ``u v`` or ``u v weight`` per line.

    Returns:
        A :class:`Graph` with one row per distinct id; ``node_ids`` is set unless the
        ids are exactly ``0..n-1``.

    Example:
        >>> g = load_edgelist("edges.tsv")  # doctest: +SKIP
        >>> g.adj.shape
        (34, 34)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"edge list does not exist: {path}")
    if not path.is_file():
        raise ValueError(f"edge list must be a file, got {path}")
    fast = parse_fast(path.read_bytes())
    if fast is not None and fast.rows is not None:
        u, v, node_ids = fast.rows
        w_fast = fast.weights
    else:
        if fast is not None:
            src, dst, w_fast = fast.src, fast.dst, fast.weights
        else:
            src, dst, w_fast = _parse_lines(path)
        if not src:
            raise ValueError(f"edge list {path} holds no edges")
        rows = int_rows(src, dst)
        u, v, node_ids = rows if rows is not None else _rows_of_ids(src, dst)
    n = int(max(u.max(), v.max())) + 1  # every row is the end of some edge
    w_arr = w_fast if w_fast is not None else np.ones(len(u))
    loops = u == v
    if loops.any():
        warnings.warn(
            f"{path.name}: dropped {int(loops.sum())} self-loop(s)", UserWarning, stacklevel=2
        )
        u, v, w_arr = u[~loops], v[~loops], w_arr[~loops]
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    if w_fast is None:  # unweighted: duplicates merge to weight 1, no ordering needed
        adj = sp.coo_matrix(
            (np.ones(2 * len(lo)), (np.concatenate([lo, hi]), np.concatenate([hi, lo]))),
            shape=(n, n),
        ).tocsr()  # sums duplicates and sorts the indices
        adj.data[:] = 1.0
        return Graph(adj=adj, node_ids=node_ids, name=path.stem)
    # Duplicates in either direction: keep the last occurrence (np.unique keeps the first of
    # the reversed arrays).
    key = (lo * n + hi)[::-1]
    _, first = np.unique(key, return_index=True)
    keep = len(key) - 1 - first
    lo, hi, w_arr = lo[keep], hi[keep], w_arr[keep]
    adj = sp.coo_matrix(
        (np.concatenate([w_arr, w_arr]), (np.concatenate([lo, hi]), np.concatenate([hi, lo]))),
        shape=(n, n),
    ).tocsr()
    adj.sort_indices()
    return Graph(adj=adj, node_ids=node_ids, name=path.stem)


def _parse_lines(path: Path) -> tuple[list[str], list[str], np.ndarray | None]:
    """The line-by-line reader: comments, mixed separators, and the errors naming a line."""
    src: list[str] = []
    dst: list[str] = []
    weights: list[float] = []
    weighted: bool | None = None
    for lineno, raw in _text_lines(path):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p for p in _SPLIT.split(line) if p]
        where = f"{path.name} line {lineno}"
        if len(parts) not in (2, 3):
            raise ValueError(
                f"{where}: expected 'u v' or 'u v weight', got {len(parts)} field(s): "
                f"{raw.strip()[:80]!r}"
            )
        has_weight = len(parts) == 3
        if weighted is None:
            weighted = has_weight
        elif weighted != has_weight:
            raise ValueError(
                f"{where}: every line must have a weight column or none does; "
                f"got {raw.strip()[:80]!r}"
            )
        if has_weight:
            try:
                w = float(parts[2])
            except ValueError:
                raise ValueError(f"{where}: weight must be a number, got {parts[2]!r}") from None
            if not np.isfinite(w) or w <= 0:
                raise ValueError(f"{where}: weight must be finite and > 0, got {parts[2]!r}")
            weights.append(w)
        src.append(parts[0])
        dst.append(parts[1])
    return src, dst, (np.array(weights, dtype=np.float64) if weighted else None)


def load_mat(path: str | Path) -> Graph:
    """Read a MATLAB file with ``network`` (adjacency) and optional ``group`` (labels).

    ``group`` of shape ``(n_nodes, n_labels)`` becomes an int8 indicator matrix (multi-label,
    as in BlogCatalog); a single column becomes class ids (integers, ``-1`` = unlabelled).
    The dense label matrix is bounded by the file: ``n_nodes * n_labels`` may not exceed
    64 bytes per byte of file (plus 1 MiB).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a readable MATLAB file, no ``network``, or a ``network`` /
            ``group`` of the wrong kind or shape (the message names the file).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f".mat file does not exist: {path}")
    raw = path.read_bytes()
    check_mat_v5(raw, str(path))  # damaged structure would crash scipy's compiled reader
    try:
        data = scipy.io.loadmat(io.BytesIO(raw))
    except Exception as exc:  # scipy raises many kinds on a damaged file
        raise ValueError(
            f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})"
        ) from None
    keys = [k for k in data if not k.startswith("__")]
    check_required_keys(f"{path.name}", keys, ["network"])
    network = _mat_matrix(data["network"], f"{path.name}:network")
    if network.shape[0] != network.shape[1]:  # before any conversion sizes by the row count
        raise ValueError(
            f"{path.name}:network must be square (n_nodes, n_nodes), got shape {network.shape}"
        )
    adj = check_adjacency(f"{path.name}:network", network)
    adj = _drop_self_loops(_symmetric(adj, path.name), path.name)
    labels = None
    if "group" in data:
        labels = _mat_labels(data["group"], adj.shape[0], path)
    return Graph(adj=adj, labels=labels, name=path.stem)


def _mat_matrix(value: Any, where: str) -> Any:
    """A 2-D numeric dense or sparse matrix of a .mat file, its sparse structure checked.

    scipy does not check the indices of a sparse matrix it reads; a damaged file would
    crash (segfault) the first conversion, so they are checked here first.
    """
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind in "biuf":
        return value
    if sp.issparse(value) and value.dtype.kind in "biuf" and value.format in ("csc", "csr"):
        try:
            value.check_format(full_check=True)
        except ValueError as exc:
            raise ValueError(f"{where}: damaged sparse matrix ({exc})") from None
        return value
    kind = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
    raise ValueError(f"{where} must be a 2-D numeric matrix, got {kind}")


def _mat_labels(value: object, n: int, path: Path) -> np.ndarray:
    where = f"{path.name}:group"
    group = _mat_matrix(value, where)
    shape = group.shape
    if shape[0] != n:
        raise ValueError(f"{where} must have one row per node ({n}), got shape {tuple(shape)}")
    budget = 64 * path.stat().st_size + (1 << 20)
    if shape[0] * shape[1] > budget:
        raise ValueError(
            f"{where} of shape {tuple(shape)} is too large for a dense label matrix: "
            f"at most {budget} cells for this {path.stat().st_size}-byte file"
        )
    dense = np.asarray(group.toarray() if sp.issparse(group) else group)
    if not np.all(np.isfinite(dense)):
        raise ValueError(f"{where} must be finite, got a non-finite value")
    if dense.shape[1] > 1:
        return np.asarray(dense != 0, dtype=np.int8)
    ids = dense.reshape(-1)
    bad = (ids != np.round(ids)) | (ids < -1)
    if bad.any():
        raise ValueError(
            f"{where}: class ids must be integers >= -1 (-1 = unlabelled), "
            f"got {ids[bad][0]} for node {int(np.flatnonzero(bad)[0])}"
        )
    return ids.astype(np.int64)


def load_planetoid(folder: str | Path, name: str = "cora") -> Graph:
    """Rebuild a Planetoid citation graph (``ind.<name>.*``) as in the GCN repository.

    Test nodes are put back in their original order (``test.index``); labels are the
    argmax of the one-hot rows (rows without a label get ``-1``). A test range with gaps
    (the public Citeseer set lacks some isolated test nodes) is padded as the GCN code
    does: the missing nodes of ``min(test.index)..max(test.index)`` get zero features and
    label ``-1``.

    Node ids are rows, so they are bounded by the data: graph ids must be below the
    number of rows (allx + tx + the gaps of the test range), test ids at least
    ``len(allx)``, and the gaps at most one per test node.

    Args:
        folder: directory holding ``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}``.
        name: dataset prefix, ``"cora"`` by default.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a file that is empty, not a valid pickle, refused by the restricted
            unpickler, or inconsistent with the others (the message names the file).
    """
    folder = Path(folder)
    objects: dict[str, object] = {}
    graph_bytes = 0
    for part in ("tx", "ty", "allx", "ally", "graph"):
        file = folder / f"ind.{name}.{part}"
        if not file.is_file():
            raise FileNotFoundError(f"Planetoid file does not exist: {file}")
        data = file.read_bytes()
        objects[part] = restricted_load(data, where=str(file))
        graph_bytes = len(data)  # the last one read is the graph
    index_file = folder / f"ind.{name}.test.index"
    if not index_file.is_file():
        raise FileNotFoundError(f"Planetoid file does not exist: {index_file}")
    test_idx = read_test_index(index_file)
    adj, labels, features = build_planetoid(
        objects, test_idx, str(folder / f"ind.{name}"), graph_bytes=graph_bytes
    )
    adj = adj.maximum(adj.T).tocsr()
    adj.data[:] = 1.0
    adj = _drop_self_loops(sp.csr_matrix(adj), f"ind.{name}.graph")
    adj.sort_indices()
    return Graph(adj=adj, labels=labels, features=features, name=name)


def load_graph(spec: str) -> Graph:
    """Load from a ``kind:PATH`` spec: ``blogcatalog:``/``mat:`` (.mat), ``cora:``/``planetoid:``
    (folder, or a file inside it), ``edges:`` (edge list).
    """
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(f"data must look like KIND:PATH with KIND one of {', '.join(GRAPH_KINDS)}")
    kind = check_choice("data kind", kind.strip().lower(), GRAPH_KINDS)
    path = Path(rest)
    if kind in ("blogcatalog", "mat"):
        graph = load_mat(path)
        if kind == "blogcatalog":
            graph.name = "blogcatalog"
        return graph
    if kind in ("cora", "planetoid"):
        folder = path if path.is_dir() else path.parent
        name = "cora"
        if kind == "planetoid" and not path.is_dir():
            name = path.name.split(".")[1] if path.name.startswith("ind.") else "cora"
        return load_planetoid(folder, name)
    return load_edgelist(path)
