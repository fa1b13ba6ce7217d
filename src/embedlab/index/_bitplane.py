"""Asymmetric sign-code scoring with a bit-plane query: popcounts instead of table lookups.

A document is stored as its sign bits ``b`` (``s = 2 b - 1``, one bit per dimension, packed
in uint64 words, :func:`embedlab.index.binary.pack_signs`). The exact asymmetric score
``q . s`` needs the float query; the table kernel of :mod:`embedlab.index._scan` does one
lookup per code byte (48 per 384-bit code). Here the query is quantised per query to
``bits`` unsigned levels, ``q_i ~ lo + delta * u_i`` with ``u_i`` in ``[0, 2^bits)``, and
``u`` is split into bit planes ``P_j`` (bit ``i`` of ``P_j`` = bit ``j`` of ``u_i``), so::

    q^ . s = 2 lo * popcount(b) + 2 delta * sum_j 2^j popcount(P_j & b) - sum_i q^_i

exactly, for the quantised query ``q^``: ``bits`` AND + popcount per code word (the
query-side quantisation of RaBitQ, Gao & Long, SIGMOD 2024, on plain sign codes). The kernel
is generated for each (words per code, bits) so that every loop over words and planes is
unrolled and LLVM vectorises the loop over codes (AVX2 / AVX-512 ``vpopcntq`` where the CPU
has it); codes are transposed into blocks of 64 inside the kernel, once per block for all
the queries of a thread, so the index keeps its row-major codes. ``popcount(b)`` is computed
once per block too.

Measured on 100k x 384 random codes, k=100, one thread (2 shared cores, ``python
benchmarks/binary_asym.py``): see :class:`embedlab.index.binary.Binary` for the figures.

Generated kernels are written once to ``<cache>/kernels/`` (:func:`embedlab._cache.cache_dir`)
and imported from there so that numba caches their machine code like any other kernel; the
file is re-checked against the generated source before every import. Where the folder is not
writable the kernel is compiled in memory (about 2-4 s per process and shape).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
from collections.abc import Callable
from typing import Any

import numba  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from embedlab._cache import cache_dir
from embedlab._io import atomic_write_text
from embedlab.index._base import F32, I64
from embedlab.index._topk import outputs, run_in_threads

__all__ = ["MAX_BITS", "MAX_WORDS", "bitplane_search", "query_planes"]

U64 = npt.NDArray[np.uint64]
MAX_BITS = 8
#: codes longer than this (2,048 dimensions) use the exact table kernel instead
MAX_WORDS = 32
_BLOCK = 64  # codes transposed and scored together
_VERSION = 1  # bump when the generated source changes meaning

_KERNELS: dict[tuple[int, int], Callable[..., None]] = {}
_LOCK = threading.Lock()


@numba.njit(inline="always")
def popc(x: Any) -> Any:
    """Bits set in a uint64 (the SWAR form, which LLVM turns into ``popcnt`` / ``vpopcntq``)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    m2 = np.uint64(0x3333333333333333)
    x = (x & m2) + ((x >> np.uint64(2)) & m2)
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


def query_planes(q: F32, bits: int, words: int) -> tuple[U64, F32, F32, F32]:
    """Quantise queries ``(n_q, d)`` to ``bits`` levels and split them into bit planes.

    Returns:
        ``planes (n_q, bits, words)`` uint64 (bits past ``d`` are 0), and per query
        ``a = 2 lo``, ``dd = 2 delta`` and ``s0 = sum_i q^_i`` (float32), so that the score
        of sign bits ``b`` is ``a * popcount(b) + dd * sum_j 2^j popcount(P_j & b) - s0``,
        which is ``q^ . s`` for the quantised query ``q^ = lo + delta * u``.
    """
    n_q, d = q.shape
    q64 = q.astype(np.float64)
    lo = q64.min(axis=1)
    span = q64.max(axis=1) - lo
    levels = (1 << bits) - 1
    delta = np.where(span > 0, span / levels, 1.0)
    u = np.clip(np.rint((q64 - lo[:, None]) / delta[:, None]), 0, levels).astype(np.uint8)
    qhat_sum = (lo * d + delta * u.sum(axis=1, dtype=np.float64)).astype(np.float32)
    planes = np.zeros((n_q, bits, words * 64), np.bool_)
    for j in range(bits):
        planes[:, j, :d] = (u >> j) & 1
    packed = np.packbits(planes, axis=2, bitorder="little")  # (n_q, bits, 8 * words)
    planes_u64 = np.ascontiguousarray(packed).view(np.uint64)
    return (
        planes_u64,
        (2 * lo).astype(np.float32),
        (2 * delta).astype(np.float32),
        qhat_sum,
    )


def _source(words: int, bits: int) -> str:
    """Python source of the kernel for ``words`` uint64 words per code and ``bits`` planes."""
    w_range, j_range = range(words), range(bits)
    out = [
        f"# embedlab generated kernel v{_VERSION}: sign codes of {words} words, {bits} planes",
        "import numpy as np",
        "from numba import njit",
        "from embedlab.index._bitplane import popc",
        "from embedlab.index._topk import finish, offer, worse",
        "",
        "@njit(cache=True, fastmath=True, nogil=True)",
        "def kernel(codes, planes, a2, d2, s0, out_s, out_r, q0, q1):",
        "    n = codes.shape[0]",
        "    k = out_s.shape[1]",
        f"    tb = np.empty(({words}, {_BLOCK}), np.uint64)",
        f"    pcb = np.empty({_BLOCK}, np.float32)",
        f"    buf = np.empty({_BLOCK}, np.float32)",
        "    thr = np.full(q1 - q0, -np.inf, np.float32)",
        "    size = np.zeros(q1 - q0, np.int64)",
        f"    for c0 in range(0, n, {_BLOCK}):",
        f"        m = min({_BLOCK}, n - c0)",
        "        for c in range(m):",
        *(f"            tb[{w}, c] = codes[c0 + c, {w}]" for w in w_range),
        "            pcb[c] = np.float32(" + " + ".join(f"popc(tb[{w}, c])" for w in w_range) + ")",
        *(f"        r{w} = tb[{w}]" for w in w_range),
        "        for qi in range(q0, q1):",
        *(f"            p{j}_{w} = planes[qi, {j}, {w}]" for j in j_range for w in w_range),
        "            a = a2[qi]",
        "            dd = d2[qi]",
        "            sq = s0[qi]",
        "            for c in range(m):",
        *(f"                x{w} = r{w}[c]" for w in w_range),
        *(
            f"                t{j} = " + " + ".join(f"popc(p{j}_{w} & x{w})" for w in w_range)
            for j in j_range
        ),
        "                t = " + " + ".join(f"(t{j} << np.uint64({j}))" for j in j_range),
        "                buf[c] = a * pcb[c] + dd * np.float32(t) - sq",
        "            hs = out_s[qi]",
        "            hr = out_r[qi]",
        "            th = thr[qi - q0]",
        "            sz = size[qi - q0]",
        "            for c in range(m):",
        "                s = buf[c]",
        "                if s >= th:",
        "                    r = c0 + c",
        "                    if sz < k or worse(hs[0], hr[0], s, r):",
        "                        sz = offer(hs, hr, sz, s, r)",
        "                        if sz == k:",
        "                            th = hs[0]",
        "            thr[qi - q0] = th",
        "            size[qi - q0] = sz",
        "    for qi in range(q0, q1):",
        "        finish(out_s[qi], out_r[qi], size[qi - q0])",
        "",
    ]
    return "\n".join(out)


def _import_file(source: str, name: str) -> Callable[..., None] | None:
    """Write ``source`` under the cache folder (if missing or different) and import it."""
    folder = cache_dir() / "kernels"
    path = folder / f"{name}.py"
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != source:
            atomic_write_text(path, source)
        if path.read_text(encoding="utf-8") != source:  # pragma: no cover - a racing writer
            return None
        modname = f"embedlab_kernel_{name}"
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:  # pragma: no cover - importlib contract
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module  # numba's cache re-imports the module by name
        spec.loader.exec_module(module)
    except OSError:
        return None
    fn: Callable[..., None] = module.kernel
    return fn


def _compile_in_memory(source: str) -> Callable[..., None]:
    """Compile our own generated source without numba's disk cache."""
    namespace: dict[str, Any] = {}
    code = compile(source.replace("cache=True", "cache=False"), "<embedlab-kernel>", "exec")
    exec(code, namespace)
    fn: Callable[..., None] = namespace["kernel"]
    return fn


def _kernel(words: int, bits: int) -> Callable[..., None]:
    key = (words, bits)
    with _LOCK:
        fn = _KERNELS.get(key)
        if fn is None:
            source = _source(words, bits)
            digest = hashlib.sha256(source.encode()).hexdigest()[:12]
            name = f"bitplane_w{words}_b{bits}_{digest}"
            fn = _import_file(source, name) or _compile_in_memory(source)
            _KERNELS[key] = fn
    return fn


def bitplane_search(q: F32, codes: U64, k: int, bits: int) -> tuple[F32, I64]:
    """Top ``k`` rows of sign codes ``codes (n, W)`` for queries ``q (n_q, d)``
    (``d <= 64 W``) by the score of the ``bits``-bit quantised query (module docstring).

    Returns ``(scores (n_q, k) float32, rows (n_q, k) int64)`` best first, ties by row;
    ``-inf`` / ``-1`` past the codes stored.
    """
    if not 1 <= bits <= MAX_BITS:  # pragma: no cover - checked by the callers
        raise ValueError(f"bits must be in [1, {MAX_BITS}], got {bits}")
    words = codes.shape[1]
    if words > MAX_WORDS:  # pragma: no cover - checked by the callers
        raise ValueError(f"codes of {words} words exceed MAX_WORDS={MAX_WORDS}")
    planes, a2, d2, s0 = query_planes(np.asarray(q, np.float32), bits, words)
    codes = np.ascontiguousarray(codes)
    out_s, out_r = outputs(q.shape[0], k)
    kern = _kernel(words, bits)

    def run(q0: int, q1: int) -> None:
        kern(codes, planes, a2, d2, s0, out_s, out_r, q0, q1)

    run_in_threads(run, q.shape[0])
    return out_s, out_r
