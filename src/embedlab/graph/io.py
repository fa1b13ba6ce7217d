"""Graph loaders: edge lists, MATLAB ``.mat`` (network / group) and Planetoid (Cora).

Every loader returns a :class:`Graph` whose ``adj`` is a symmetric ``scipy.sparse`` CSR
matrix of shape ``(n_nodes, n_nodes)``; row ``i`` of every output is node ``i``.

Edge lists (``.tsv`` / ``.csv`` / ``.txt``): one edge per line, ``u v`` or ``u v weight``,
separated by whitespace, commas or tabs; ``#`` starts a comment. Handling of bad input:

- integer ids (``0``, ``17``): node ``i`` is row ``i``; isolated nodes up to the largest
  id are kept (ids ``0, 5`` give 6 rows);
- any non-integer id (``alice``): all ids are mapped to rows in first-seen order and
  :attr:`Graph.node_ids` holds the mapping (the CLI writes it beside the output);
- self-loops are dropped with a warning (FastRP and the graphlet counts assume none);
- duplicate edges, in either direction, are merged; with weights the last one wins;
- a line that does not parse raises ``ValueError`` naming the file and line number.

Planetoid files are Python 2 pickles; they are read with a restricted unpickler that
admits only the numpy / scipy / container types those files need, never plain pickle.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import scipy.sparse as sp

from embedlab._validation import check_adjacency, check_choice, check_required_keys

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
_INT_ID = re.compile(r"\d+")


@dataclass
class Graph:
    """An undirected graph with optional node labels and features.

    Attributes:
        adj: ``(n_nodes, n_nodes)`` symmetric CSR float64, no self-loops.
        labels: ``(n_nodes,)`` int64 class ids (single-label), or ``(n_nodes, n_labels)``
            int8 indicator matrix (multi-label), or ``None``.
        node_ids: original id of each row when ids were mapped, else ``None``.
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


def load_edgelist(path: str | Path) -> Graph:
    """Read an edge list (see the module docstring for the format and bad-input handling).

    Args:
        path: text file with ``u v`` or ``u v weight`` per line.

    Returns:
        A :class:`Graph`; ``node_ids`` is set when any id is not a non-negative integer.

    Example:
        >>> g = load_edgelist("edges.tsv")  # doctest: +SKIP
        >>> g.adj.shape
        (34, 34)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"edge list does not exist: {path}")
    src: list[str] = []
    dst: list[str] = []
    weights: list[float] = []
    weighted: bool | None = None
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [p for p in _SPLIT.split(line) if p]
            where = f"{path.name} line {lineno}"
            if len(parts) not in (2, 3):
                raise ValueError(
                    f"{where}: expected 'u v' or 'u v weight', got {len(parts)} field(s): "
                    f"{raw.strip()!r}"
                )
            has_weight = len(parts) == 3
            if weighted is None:
                weighted = has_weight
            elif weighted != has_weight:
                raise ValueError(
                    f"{where}: every line must have a weight column or none does; "
                    f"got {raw.strip()!r}"
                )
            if has_weight:
                try:
                    w = float(parts[2])
                except ValueError:
                    raise ValueError(
                        f"{where}: weight must be a number, got {parts[2]!r}"
                    ) from None
                if not np.isfinite(w) or w <= 0:
                    raise ValueError(f"{where}: weight must be finite and > 0, got {parts[2]!r}")
                weights.append(w)
            src.append(parts[0])
            dst.append(parts[1])
    if not src:
        raise ValueError(f"edge list {path} holds no edges")
    node_ids: list[str] | None
    if all(_INT_ID.fullmatch(t) for t in (*src, *dst)):
        u = np.array([int(t) for t in src], dtype=np.int64)
        v = np.array([int(t) for t in dst], dtype=np.int64)
        n = int(max(u.max(), v.max())) + 1
        node_ids = None
    else:
        index: dict[str, int] = {}
        for a, b in zip(src, dst, strict=True):
            index.setdefault(a, len(index))
            index.setdefault(b, len(index))
        u = np.array([index[t] for t in src], dtype=np.int64)
        v = np.array([index[t] for t in dst], dtype=np.int64)
        n = len(index)
        node_ids = list(index)
    w_arr = np.array(weights, dtype=np.float64) if weighted else np.ones(len(u))
    loops = u == v
    if loops.any():
        warnings.warn(
            f"{path.name}: dropped {int(loops.sum())} self-loop(s)", UserWarning, stacklevel=2
        )
        u, v, w_arr = u[~loops], v[~loops], w_arr[~loops]
    lo, hi = np.minimum(u, v), np.maximum(u, v)
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


def load_mat(path: str | Path) -> Graph:
    """Read a MATLAB file with ``network`` (adjacency) and optional ``group`` (labels).

    ``group`` of shape ``(n_nodes, n_labels)`` becomes an int8 indicator matrix (multi-label,
    as in BlogCatalog); a single column becomes class ids.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f".mat file does not exist: {path}")
    data = scipy.io.loadmat(str(path))
    keys = [k for k in data if not k.startswith("__")]
    check_required_keys(f"{path.name}", keys, ["network"])
    adj = check_adjacency(f"{path.name}:network", data["network"])
    adj = _drop_self_loops(_symmetric(adj, path.name), path.name)
    labels: np.ndarray | None = None
    if "group" in data:
        group = data["group"]
        dense = np.asarray(group.todense() if sp.issparse(group) else group)
        if dense.shape[0] != adj.shape[0]:
            raise ValueError(
                f"{path.name}: group must have one row per node ({adj.shape[0]}), "
                f"got shape {dense.shape}"
            )
        if dense.ndim == 2 and dense.shape[1] > 1:
            labels = (dense != 0).astype(np.int8)
        else:
            labels = dense.reshape(-1).astype(np.int64)
    return Graph(adj=adj, labels=labels, name=path.stem)


# --- Planetoid ----------------------------------------------------------------------------


def _numpy_reconstruct() -> Any:
    import importlib

    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2, numpy 1
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):  # pragma: no cover - depends on numpy
            continue
    raise ImportError("numpy's array _reconstruct function was not found")  # pragma: no cover


def _allowed_globals() -> dict[tuple[str, str], Any]:
    recon = _numpy_reconstruct()
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): recon,
        ("numpy._core.multiarray", "_reconstruct"): recon,
        ("collections", "defaultdict"): defaultdict,
        ("__builtin__", "list"): list,
        ("builtins", "list"): list,
        ("__builtin__", "set"): set,
        ("builtins", "set"): set,
        ("__builtin__", "dict"): dict,
        ("builtins", "dict"): dict,
    }
    for cls in (sp.csr_matrix, sp.csc_matrix, sp.lil_matrix, sp.coo_matrix):
        name = cls.__name__
        short = name.split("_")[0]
        for module in (f"scipy.sparse.{short}", f"scipy.sparse._{short}", "scipy.sparse"):
            allowed[(module, name)] = cls
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only an explicit allow-list of numpy / scipy / container types.

    Any other global (``os.system``, ``builtins.eval``, ...) raises
    ``pickle.UnpicklingError`` before anything is called.
    """

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays, scipy sparse matrices "
                "and plain containers are allowed in Planetoid files"
            ) from None


def restricted_load(data: bytes, *, where: str = "pickle") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (``encoding="latin1"`` for py2)."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _as_csr(obj: Any, where: str) -> sp.csr_matrix:
    """Rebuild a fresh CSR matrix (old pickles hold private attributes of older scipy)."""
    if isinstance(obj, np.ndarray):
        return sp.csr_matrix(obj)
    state = getattr(obj, "__dict__", {})
    if all(k in state for k in ("data", "indices", "indptr")):
        shape = state.get("_shape", state.get("shape"))
        if shape is None:
            raise ValueError(f"{where}: sparse matrix without a shape")
        return sp.csr_matrix(
            (np.asarray(state["data"]), np.asarray(state["indices"]), np.asarray(state["indptr"])),
            shape=tuple(int(s) for s in shape),
        )
    if sp.issparse(obj):
        return sp.csr_matrix(obj)
    raise ValueError(f"{where}: expected a matrix, got {type(obj).__name__}")


def load_planetoid(folder: str | Path, name: str = "cora") -> Graph:
    """Rebuild a Planetoid citation graph (``ind.<name>.*``) as in the GCN repository.

    Test nodes are put back in their original order (``test.index``); labels are the
    argmax of the one-hot rows (rows without a label get ``-1``).

    Args:
        folder: directory holding ``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}``.
        name: dataset prefix, ``"cora"`` by default.
    """
    folder = Path(folder)
    objects: dict[str, Any] = {}
    for part in ("tx", "ty", "allx", "ally", "graph"):
        file = folder / f"ind.{name}.{part}"
        if not file.exists():
            raise FileNotFoundError(f"Planetoid file does not exist: {file}")
        objects[part] = restricted_load(file.read_bytes(), where=str(file.name))
    index_file = folder / f"ind.{name}.test.index"
    if not index_file.exists():
        raise FileNotFoundError(f"Planetoid file does not exist: {index_file}")
    test_idx = np.array([int(t) for t in index_file.read_text().split()], dtype=np.int64)
    test_range = np.sort(test_idx)

    tx = _as_csr(objects["tx"], "tx")
    allx = _as_csr(objects["allx"], "allx")
    features = sp.vstack([allx, tx]).tolil()
    features[test_idx, :] = features[test_range, :]
    onehot = np.vstack([np.asarray(objects["ally"]), np.asarray(objects["ty"])])
    onehot[test_idx, :] = onehot[test_range, :]

    graph_dict = objects["graph"]
    if not isinstance(graph_dict, dict):
        raise ValueError(f"ind.{name}.graph: expected a dict of lists, got {type(graph_dict)}")
    rows: list[int] = []
    cols: list[int] = []
    for node, nbrs in graph_dict.items():
        for nb in nbrs:
            rows.append(int(node))
            cols.append(int(nb))
    n = max(features.shape[0], max(rows + cols) + 1)
    adj = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    adj = adj.maximum(adj.T).tocsr()
    adj.data[:] = 1.0
    adj = _drop_self_loops(sp.csr_matrix(adj), f"ind.{name}.graph")
    adj.sort_indices()
    labels = np.where(onehot.sum(axis=1) > 0, onehot.argmax(axis=1), -1).astype(np.int64)
    return Graph(adj=adj, labels=labels, features=features.tocsr(), name=name)


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
