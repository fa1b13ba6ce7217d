"""Planetoid citation graphs (``ind.<name>.*`` of the GCN repository) and their safe unpickling.

The files are Python 2 pickles; they are read with :class:`RestrictedUnpickler`, which
admits only the numpy / scipy / container types those files need, never plain pickle.
Everything read is checked before it sizes an allocation: node ids and test indices are
rows, so they must lie within the rows the feature matrices provide (see
:func:`load_planetoid`).
"""

from __future__ import annotations

import functools
import io
import math
import pickle
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["RestrictedUnpickler", "build_planetoid", "read_test_index", "restricted_load"]

_INDEX = re.compile(r"[0-9]{1,18}")


def _numpy_reconstruct() -> Any:
    import importlib

    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2, numpy 1
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):  # pragma: no cover - depends on numpy
            continue
    raise ImportError("numpy's array _reconstruct function was not found")  # pragma: no cover


_RECONSTRUCT = _numpy_reconstruct()


def _bounded_reconstruct(limit: int, subtype: Any, shape: Any, dtype: Any) -> Any:
    """numpy's ``_reconstruct``, refusing a shape larger than the pickle (it allocates it)."""
    dims = shape if isinstance(shape, tuple) else (shape,)
    if not all(isinstance(d, int) and d >= 0 for d in dims):
        raise pickle.UnpicklingError(f"array shape must be non-negative integers, got {shape!r}")
    if math.prod(dims) * np.dtype(dtype).itemsize > limit:
        raise pickle.UnpicklingError(
            f"array of shape {shape!r} is larger than the {limit}-byte file that holds it"
        )
    return _RECONSTRUCT(subtype, shape, dtype)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _bounded_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _bounded_reconstruct,
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
    ``pickle.UnpicklingError`` before anything is called. An array is never
    allocated larger than ``limit`` bytes (by default 1 GiB; :func:`restricted_load`
    passes the size of the pickle).
    """

    _ALLOWED = _allowed_globals()

    def __init__(self, file: Any, *, limit: int = 1 << 30, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._limit = limit

    def find_class(self, module: str, name: str) -> Any:
        try:
            found = self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays, scipy sparse matrices "
                "and plain containers are allowed in Planetoid files"
            ) from None
        if found is _bounded_reconstruct:
            return functools.partial(_bounded_reconstruct, self._limit)
        return found


def restricted_load(data: bytes, *, where: str = "pickle") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (``encoding="latin1"`` for py2).

    Raises:
        ValueError: a refused global, or any data that is not a valid pickle (empty,
            truncated, corrupted); the message starts with ``where``.
    """
    if not data:
        raise ValueError(f"{where}: not a pickle, got an empty file")
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1", limit=len(data)).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{where}: {exc}") from None
    except Exception as exc:  # a corrupted pickle fails in many ways (EOFError, TypeError, ...)
        raise ValueError(f"{where}: not a valid pickle ({type(exc).__name__}: {exc})") from None


def read_test_index(file: Path) -> np.ndarray:
    """``(n_test,)`` int64 node ids of ``ind.<name>.test.index``: one integer per line."""
    values: list[int] = []
    for lineno, raw in enumerate(file.read_bytes().split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"{file} line {lineno}: not valid UTF-8 text") from None
        if not text:
            continue
        if _INDEX.fullmatch(text) is None:
            raise ValueError(
                f"{file} line {lineno}: a test index must be an integer >= 0, got {text[:40]!r}"
            )
        values.append(int(text))
    if not values:
        raise ValueError(f"{file} must list at least one test node, got none")
    return np.asarray(values, dtype=np.int64)


def _as_csr(obj: Any, where: str) -> sp.csr_matrix:
    """Rebuild a fresh CSR matrix (old pickles hold private attributes of older scipy)."""
    try:
        if isinstance(obj, np.ndarray):
            if obj.ndim != 2 or obj.dtype.kind not in "biuf":
                raise ValueError(f"expected a 2-D numeric matrix, got {obj.dtype} {obj.shape}")
            return sp.csr_matrix(obj)
        state = getattr(obj, "__dict__", {})
        if all(k in state for k in ("data", "indices", "indptr")):
            arrays = [state[k] for k in ("data", "indices", "indptr")]
            if not all(isinstance(a, np.ndarray) for a in arrays):
                raise ValueError("sparse data, indices and indptr must be numpy arrays")
            shape = state.get("_shape", state.get("shape"))
            if shape is None:
                raise ValueError("sparse matrix without a shape")
            mat = sp.csr_matrix(tuple(arrays), shape=tuple(int(s) for s in shape))
            mat.check_format(full_check=True)
            return mat
        if sp.issparse(obj):
            return sp.csr_matrix(obj)
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise ValueError(f"{where}: not a valid matrix ({exc})") from None
    raise ValueError(f"{where}: expected a matrix, got {type(obj).__name__}")


def _as_onehot(obj: Any, where: str, rows: int) -> np.ndarray:
    if not isinstance(obj, np.ndarray) or obj.ndim != 2 or obj.dtype.kind not in "biuf":
        shown = f"{obj.dtype} {obj.shape}" if isinstance(obj, np.ndarray) else type(obj).__name__
        raise ValueError(f"{where}: expected a 2-D numeric array of one-hot rows, got {shown}")
    if obj.shape[0] != rows:
        raise ValueError(f"{where}: expected {rows} rows (one per feature row), got {obj.shape[0]}")
    return obj


def _node(value: Any, where: str, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{where}: node ids must be integers, got {value!r}")
    node = int(value)
    if not 0 <= node < n:
        raise ValueError(
            f"{where}: node ids must be in [0, {n}) (the rows of allx and tx), got {node}"
        )
    return node


def build_planetoid(
    objects: dict[str, Any], test_idx: np.ndarray, prefix: str, *, graph_bytes: int
) -> tuple[sp.csr_matrix, np.ndarray, sp.csr_matrix]:
    """``(adj (n, n), labels (n,), features (n, f))`` from the unpickled parts.

    ``graph_bytes`` is the size of the graph's file: a graph cannot list more
    neighbours than that (a pickle could share one list between many nodes).

    Row ``i < len(allx)`` is allx row ``i``; test node ``test_idx[k]`` gets row ``k``
    of tx / ty. Rows in neither (the gaps of Citeseer's test range) get zero features
    and label ``-1``, as the GCN code pads tx / ty with zero rows over
    ``min(test_idx)..max(test_idx)``.
    """
    allx = _as_csr(objects["allx"], f"{prefix}.allx")
    tx = _as_csr(objects["tx"], f"{prefix}.tx")
    if allx.shape[1] != tx.shape[1]:
        raise ValueError(
            f"{prefix}.tx: expected {allx.shape[1]} feature columns (as allx), got {tx.shape[1]}"
        )
    ally = _as_onehot(objects["ally"], f"{prefix}.ally", allx.shape[0])
    ty = _as_onehot(objects["ty"], f"{prefix}.ty", tx.shape[0])
    if ally.shape[1] != ty.shape[1]:
        raise ValueError(
            f"{prefix}.ty: expected {ally.shape[1]} classes (as ally), got {ty.shape[1]}"
        )
    n_train, n_test = allx.shape[0], tx.shape[0]
    where = f"{prefix}.test.index"
    if len(test_idx) != n_test:
        raise ValueError(
            f"{where}: expected {n_test} test nodes (one per tx row), got {len(test_idx)}"
        )
    uniq, counts = np.unique(test_idx, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"{where}: test nodes must not repeat, got {int(uniq[counts > 1][0])} twice"
        )
    if n_test and test_idx.min() < n_train:
        raise ValueError(
            f"{where}: test nodes must be >= {n_train} (rows below are allx), "
            f"got {int(test_idx.min())}"
        )
    n = n_train + n_test
    if n_test:
        gaps = int(test_idx.max()) + 1 - n
        if gaps > n_test:  # Citeseer: 15 gaps among 1,015; many more means a bad index
            raise ValueError(
                f"{where}: the test range {int(test_idx.min())}..{int(test_idx.max())} "
                f"has {gaps} nodes without a tx row; at most {n_test} (one per test node) "
                "are accepted"
            )
        n += max(gaps, 0)
    rows = np.concatenate([np.arange(n_train, dtype=np.int64), test_idx])
    stacked = sp.vstack([allx, tx]).tocoo()
    features = sp.csr_matrix(
        (stacked.data, (rows[stacked.row], stacked.col)), shape=(n, allx.shape[1])
    )
    onehot = np.zeros((n, ally.shape[1]), dtype=np.float64)
    onehot[:n_train] = ally
    onehot[test_idx] = ty
    labels = np.where(onehot.sum(axis=1) > 0, onehot.argmax(axis=1), -1).astype(np.int64)

    graph = objects["graph"]
    gwhere = f"{prefix}.graph"
    if not isinstance(graph, dict):
        raise ValueError(
            f"{gwhere}: expected a dict of neighbour lists, got {type(graph).__name__}"
        )
    lists = list(graph.values())
    if not all(isinstance(v, (list, tuple, set)) for v in lists):
        raise ValueError(f"{gwhere}: expected a dict of neighbour lists")
    total = sum(len(v) for v in lists)
    if total > graph_bytes:  # shared lists would make a small pickle a huge graph
        raise ValueError(f"{gwhere}: lists {total} neighbours, more than its file could hold")
    src = np.empty(total, dtype=np.int64)
    dst = np.empty(total, dtype=np.int64)
    k = 0
    for node, nbrs in graph.items():
        u = _node(node, gwhere, n)
        for nb in nbrs:
            src[k], dst[k] = u, _node(nb, gwhere, n)
            k += 1
    adj = sp.coo_matrix((np.ones(total), (src, dst)), shape=(n, n)).tocsr()
    return adj, labels, features
