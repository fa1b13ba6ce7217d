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
import pickletools
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


class _ArrayType:
    """Stands for ``numpy.ndarray`` in a pickle: the subtype of ``_reconstruct``, never called.

    Called directly, ``numpy.ndarray(shape)`` would allocate any shape a file names.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError("refusing to call numpy.ndarray: it allocates any shape")


_NDARRAY = _ArrayType()
_DEFAULT_DTYPE_STATE = (None, None, None, -1, -1, 0)  # subarray, names, fields, sizes, flags


class _DTypeSpec:
    """Stands for ``numpy.dtype(name)`` in a pickle; becomes a real dtype in the array state.

    numpy's own ``dtype.__setstate__`` accepts fields, sub-arrays and sizes that a damaged
    file could set to anything; here only a plain numeric type and a byte order are kept.
    """

    def __init__(self, name: Any, align: Any = 0, copy: Any = 0) -> None:
        if not isinstance(name, str) or not re.fullmatch(r"[<>|=]?[biuf][1248]", name):
            raise pickle.UnpicklingError(f"only plain numeric dtypes are allowed, got {name!r}")
        self.dtype = np.dtype(name)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 8 or state[0] not in (3, 4):
            raise pickle.UnpicklingError(f"unexpected dtype state {state!r:.80}")
        if tuple(state[2:]) != _DEFAULT_DTYPE_STATE or state[1] not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(
                f"only plain numeric dtypes are allowed, got {state!r:.80}"
            )
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


class _GuardedArray(np.ndarray):
    """An array whose pickled state is checked before numpy reads it.

    numpy trusts the state: an object dtype with a list shorter than the shape, for
    one, crashes the interpreter. The state must be a plain numeric dtype and raw
    bytes of exactly the shape's size.
    """

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError(f"unexpected array state {state!r:.80}")
        shape, spec, fortran, raw = state[-4:]
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise pickle.UnpicklingError(
                f"array shape must be non-negative integers, got {shape!r:.80}"
            )
        if not isinstance(spec, _DTypeSpec) or not isinstance(fortran, bool):
            raise pickle.UnpicklingError("array state must name a plain numeric dtype")
        if isinstance(raw, str):
            raw = raw.encode("latin1")  # Python 2 str, read with encoding="latin1"
        if not isinstance(raw, bytes) or len(raw) != math.prod(shape) * spec.dtype.itemsize:
            raise pickle.UnpicklingError(
                f"array of shape {shape!r:.80} and dtype {spec.dtype} needs "
                f"{math.prod(shape) * spec.dtype.itemsize} bytes of data"
            )
        super().__setstate__((1, shape, spec.dtype, fortran, raw))  # type: ignore[arg-type]


def _bounded_reconstruct(limit: int, subtype: Any, shape: Any, dtype: Any) -> Any:
    """numpy's ``_reconstruct``, refusing a shape larger than the pickle (it allocates it)."""
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("_reconstruct may only build a numpy.ndarray")
    dims = shape if isinstance(shape, tuple) else (shape,)
    if not all(isinstance(d, int) and d >= 0 for d in dims):
        raise pickle.UnpicklingError(f"array shape must be non-negative integers, got {shape!r}")
    if dtype not in (b"b", "b"):  # what numpy writes: the real dtype comes with the state
        raise pickle.UnpicklingError(f"unexpected placeholder dtype {dtype!r:.40}")
    if math.prod(dims) > limit:
        raise pickle.UnpicklingError(
            f"array of shape {shape!r} is larger than the {limit}-byte file that holds it"
        )
    return _RECONSTRUCT(_GuardedArray, shape, "b")


def _empty_only(factory: type) -> Any:
    """``list`` / ``set`` / ``dict`` as a defaultdict factory: called without arguments only.

    With an argument they would copy it, and a pickle can share one big object many times.
    """

    def make(*args: Any) -> Any:
        if args:
            raise pickle.UnpicklingError(f"refusing to call {factory.__name__} with arguments")
        return factory()

    make.__name__ = factory.__name__
    return make


def _defaultdict(*args: Any) -> Any:
    if len(args) > 1:
        raise pickle.UnpicklingError("refusing to build a defaultdict from another mapping")
    return defaultdict(*args)


def _state_only(cls: type) -> type:
    """A sparse class that pickles build from their state (NEWOBJ + BUILD), never by calling it.

    ``csr_matrix((10**12, 1))`` would allocate an index pointer of 10**12 entries.
    """

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        raise pickle.UnpicklingError(f"refusing to call {cls.__name__}(...)")

    return type(cls.__name__, (cls,), {"__init__": init})


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _DTypeSpec,
        ("numpy.core.multiarray", "_reconstruct"): _bounded_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _bounded_reconstruct,
        ("collections", "defaultdict"): _defaultdict,
    }
    for factory in (list, set, dict):
        for module in ("__builtin__", "builtins"):
            allowed[(module, factory.__name__)] = _empty_only(factory)
    for cls in (sp.csr_matrix, sp.csc_matrix, sp.lil_matrix, sp.coo_matrix):
        name = cls.__name__
        short = name.split("_")[0]
        safe = _state_only(cls)
        for module in (f"scipy.sparse.{short}", f"scipy.sparse._{short}", "scipy.sparse"):
            allowed[(module, name)] = safe
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
        # walk the opcodes first: CPython allocates a BYTEARRAY8's announced length before
        # reading it, so a damaged length would ask for exabytes (pickletools checks it
        # against the bytes that remain)
        for _ in pickletools.genops(data):
            pass
    except Exception as exc:
        raise ValueError(f"{where}: not a valid pickle ({exc})") from None
    try:
        loaded = RestrictedUnpickler(io.BytesIO(data), encoding="latin1", limit=len(data)).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{where}: {exc}") from None
    except Exception as exc:  # a corrupted pickle fails in many ways (EOFError, TypeError, ...)
        raise ValueError(f"{where}: not a valid pickle ({type(exc).__name__}: {exc})") from None
    return np.asarray(loaded) if isinstance(loaded, _GuardedArray) else loaded


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
    """Rebuild a fresh CSR matrix from a dense array or a CSR / CSC matrix's pickled state.

    Old pickles hold private attributes of older scipy, so only ``data``, ``indices``,
    ``indptr`` and the shape are used, and the result is fully checked.
    """
    try:
        if isinstance(obj, np.ndarray):
            if obj.ndim != 2 or obj.dtype.kind not in "biuf":
                raise ValueError(f"expected a 2-D numeric matrix, got {obj.dtype} {obj.shape}")
            return sp.csr_matrix(np.asarray(obj))
        if not isinstance(obj, (sp.csr_matrix, sp.csc_matrix)):
            raise ValueError(f"expected a CSR or CSC matrix, got {type(obj).__name__}")
        state = vars(obj)
        if not all(isinstance(state.get(k), np.ndarray) for k in ("data", "indices", "indptr")):
            raise ValueError("sparse data, indices and indptr must be numpy arrays")
        shape = state.get("_shape", state.get("shape"))
        if not isinstance(shape, tuple) or len(shape) != 2:
            raise ValueError(f"sparse shape must be a pair of integers, got {shape!r}")
        kind = sp.csc_matrix if isinstance(obj, sp.csc_matrix) else sp.csr_matrix
        arrays = tuple(np.asarray(state[k]) for k in ("data", "indices", "indptr"))
        mat = kind(arrays, shape=(int(shape[0]), int(shape[1])))
        mat.check_format(full_check=True)
        return sp.csr_matrix(mat)
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise ValueError(f"{where}: not a valid matrix ({exc})") from None


def _as_onehot(obj: Any, where: str, rows: int) -> np.ndarray:
    if not isinstance(obj, np.ndarray) or obj.ndim != 2 or obj.dtype.kind not in "biuf":
        shown = f"{obj.dtype} {obj.shape}" if isinstance(obj, np.ndarray) else type(obj).__name__
        raise ValueError(f"{where}: expected a 2-D numeric array of one-hot rows, got {shown}")
    if obj.shape[0] != rows:
        raise ValueError(f"{where}: expected {rows} rows (one per feature row), got {obj.shape[0]}")
    return np.asarray(obj)


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
