"""Fixed Dimensional Encodings of vector sets (MUVERA), the encoding maths of
:mod:`embedlab.index.muvera` (see its docstring for the construction; :class:`FDE` is
re-exported there).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from embedlab._validation import (
    check_bool,
    check_choice,
    check_int,
    check_int_in_range,
    check_optional_int,
)
from embedlab.index._token_sets import PackedSets, pack_sets
from embedlab.index._types import F32, I64

__all__ = ["FDE", "MAX_FDE_DIM", "MAX_K_SIM"]

MAX_K_SIM = 30
MAX_FDE_DIM = 1 << 22
"""Largest ``R * 2^k_sim * d_proj`` accepted (4M float32 = 16 MiB per encoded set)."""
_ENCODE_ROWS = 1 << 14  # vectors per block while encoding ...
_ENCODE_CELLS = 1 << 22  # ... and at most this many (vector, bucket) or (set, FDE entry) cells


def _hamming_to_buckets(code: I64, gray: I64, bits: int) -> npt.NDArray[np.int32]:
    """``(t, B)`` Hamming distances between sign codes ``code (t,)`` and bucket codes ``gray``."""
    if bits <= 8:  # table lookup: (2^bits, B)
        c = np.arange(1 << bits, dtype=np.int64)[:, None] ^ gray[None, :]
        table = np.zeros(c.shape, np.int32)
        for i in range(bits):
            table += ((c >> i) & 1).astype(np.int32)
        return table[code]
    x = code[:, None] ^ gray[None, :]
    out = np.zeros(x.shape, np.int32)
    for i in range(bits):
        out += ((x >> i) & 1).astype(np.int32)
    return out


class FDE:
    """Fixed Dimensional Encodings of vector sets (MUVERA); see the module docstring.

    Args:
        dim: vector dimension.
        r: repetitions ``R`` (>= 1).
        k: SimHash hyperplanes ``k_sim`` per repetition, ``0 <= k <= 30``; ``2^k`` buckets.
        p: inner projection dimension ``d_proj`` (>= 1); ``p == dim`` means no projection.
        d_final: optional final Count-Sketch dimension (``None``: no final projection).
        seed: seeds the hyperplanes, the projections and the sketch (independent streams, so
            changing ``p`` keeps the hyperplanes).
        fill_empty: fill empty document buckets by the Hamming rule (the paper; ``False``
            leaves them zero, for ablations).

    Example:
        >>> import numpy as np
        >>> fde = FDE(16, r=4, k=3, p=8)
        >>> fde.fde_dim, fde.output_dim
        (256, 256)
        >>> rng = np.random.default_rng(0)
        >>> docs = [rng.standard_normal((5, 16)) for _ in range(3)]
        >>> fde.encode_documents(docs).shape, fde.encode_queries(docs[:1]).shape
        ((3, 256), (1, 256))
    """

    def __init__(
        self,
        dim: int,
        *,
        r: int = 20,
        k: int = 5,
        p: int = 16,
        d_final: int | None = None,
        seed: int = 0,
        fill_empty: bool = True,
    ) -> None:
        self.dim = check_int("dim", dim, min_value=1)
        self.r = check_int("r", r, min_value=1)
        self.k = check_int_in_range(
            "k", k, 0, MAX_K_SIM, why=" (k_sim: 2^k SimHash buckets per repetition)"
        )
        self.p = check_int("p", p, min_value=1)
        self.d_final = check_optional_int("d_final", d_final, min_value=1)
        self.seed = check_int("seed", seed, min_value=0)
        self.fill_empty = check_bool("fill_empty", fill_empty)
        self.buckets = 1 << self.k
        self.fde_dim = self.r * self.buckets * self.p
        if self.fde_dim > MAX_FDE_DIM:
            raise ValueError(
                f"FDE dimension r * 2^k * p must be <= {MAX_FDE_DIM}, got "
                f"{self.r} * 2^{self.k} * {self.p} = {self.fde_dim}; lower r, k or p"
            )
        hyper_rng, proj_rng, sketch_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(3)
        )
        # (dim, r * k): column r * k + i is hyperplane i of repetition r
        self.hyperplanes: F32 = hyper_rng.standard_normal((self.dim, self.r * self.k)).astype(
            np.float32
        )
        # (r, dim, p) in {-1, +1}; empty when p == dim (identity)
        self.signs: npt.NDArray[np.int8] = (
            np.zeros((0, self.dim, self.p), np.int8)
            if self.identity
            else (proj_rng.integers(0, 2, (self.r, self.dim, self.p), dtype=np.int8) * 2 - 1)
        )
        if self.d_final is None:
            self.sketch_hash: I64 = np.zeros(0, np.int64)
            self.sketch_sign: npt.NDArray[np.int8] = np.zeros(0, np.int8)
        else:
            self.sketch_hash = sketch_rng.integers(0, self.d_final, self.fde_dim, dtype=np.int64)
            self.sketch_sign = sketch_rng.integers(0, 2, self.fde_dim, dtype=np.int8) * 2 - 1
        self._cache()

    def _cache(self) -> None:
        if self.identity:
            self._proj: F32 = np.zeros((self.dim, 0), np.float32)
        else:
            # (dim, r * p): all repetitions' projections in one matmul
            scaled = self.signs.astype(np.float32) / np.float32(math.sqrt(self.p))
            self._proj = np.ascontiguousarray(scaled.transpose(1, 0, 2).reshape(self.dim, -1))
        self._gray = np.arange(self.buckets, dtype=np.int64) ^ (
            np.arange(self.buckets, dtype=np.int64) >> 1
        )
        self._bit_weights = (1 << np.arange(self.k - 1, -1, -1, dtype=np.int64)).astype(np.int64)
        if self.d_final is not None:
            order = np.argsort(self.sketch_hash, kind="stable")
            sh = self.sketch_hash[order]
            starts = np.flatnonzero(np.r_[True, sh[1:] != sh[:-1]])
            self._sk_order = order
            self._sk_starts = starts
            self._sk_targets = sh[starts]

    @property
    def identity(self) -> bool:
        """No inner projection (``p == dim``)."""
        return self.p == self.dim

    @property
    def output_dim(self) -> int:
        """Length of an encoding: ``d_final`` if set, else ``r * 2^k * p``."""
        return self.d_final if self.d_final is not None else self.fde_dim

    def spec_args(self) -> str:
        """``"r=20,k=5,p=16"`` plus the non-default options, as in a spec string."""
        out = f"r={self.r},k={self.k},p={self.p}"
        if self.d_final is not None:
            out += f",d_final={self.d_final}"
        if self.seed != 0:
            out += f",seed={self.seed}"
        if not self.fill_empty:
            out += ",fill_empty=false"
        return out

    # -- encoding
    def encode_queries(self, sets: Any) -> F32:
        """Query FDEs ``(n, output_dim)``: per bucket the SUM of the projected vectors."""
        return self.encode(pack_sets(sets, self.dim, name="queries"), "query")

    def encode_documents(self, sets: Any) -> F32:
        """Document FDEs ``(n, output_dim)``: per bucket the AVERAGE, empty buckets filled."""
        return self.encode(pack_sets(sets, self.dim, name="documents"), "document")

    def encode(self, sets: PackedSets, kind: Literal["query", "document"]) -> F32:
        """FDEs of validated packed sets (every set non-empty), in blocks of documents."""
        document = check_choice("kind", kind, ("document", "query")) == "document"
        n = len(sets)
        out = np.zeros((n, self.output_dim), np.float32)
        max_rows = max(1, min(_ENCODE_ROWS, _ENCODE_CELLS // self.buckets))
        max_sets = max(1, _ENCODE_CELLS // self.fde_dim)
        a = 0
        while a < n:
            # whole sets, about max_rows vectors, at least one set
            b = int(np.searchsorted(sets.offsets, sets.offsets[a] + max_rows, "right")) - 1
            b = min(max(b, a + 1), a + max_sets, n)
            rows = sets.vectors[sets.offsets[a] : sets.offsets[b]]
            offs = sets.offsets[a : b + 1] - sets.offsets[a]
            fde = self._encode_block(np.asarray(rows, np.float32), offs, document)
            out[a:b] = self._final(fde)
            a = b
        return out

    def _encode_block(self, x: F32, offsets: I64, document: bool) -> F32:
        n = offsets.shape[0] - 1
        t = x.shape[0]
        bsz, p = self.buckets, self.p
        set_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))  # (t,)
        bits = ((x @ self.hyperplanes) > 0).reshape(t, self.r, self.k)  # (t, r, k)
        # sign codes (hyperplane 1 = most significant bit) and their Gray-decoded buckets
        codes = (bits * self._bit_weights).sum(axis=2)  # (t, r)
        buckets = (np.bitwise_xor.accumulate(bits, axis=2) * self._bit_weights).sum(axis=2)
        proj_all = x if self.identity else x @ self._proj  # (t, p) or (t, r * p)
        out = np.zeros((self.r, n, bsz, p), np.float32)
        for rep in range(self.r):
            code, bucket = codes[:, rep], buckets[:, rep]
            vals = proj_all if self.identity else proj_all[:, rep * p : (rep + 1) * p]
            key = set_of * bsz + bucket  # (t,) flat (set, bucket)
            order = np.argsort(key, kind="stable")
            sk = key[order]
            starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
            block = out[rep].reshape(n * bsz, p)  # a view: out[rep] is contiguous
            block[sk[starts]] = np.add.reduceat(vals[order], starts, axis=0)
            if not document:
                continue
            counts = np.bincount(key, minlength=n * bsz)
            block /= np.maximum(counts, 1).astype(np.float32)[:, None]
            empty = counts == 0
            if not self.fill_empty or not bool(empty.any()):
                continue
            # the nearest vector of the set (Hamming distance of sign codes to the bucket's
            # code), first one on ties: minimise distance * t + vector number per set
            ham = _hamming_to_buckets(code, self._gray, self.k)  # (t, B)
            ham *= t
            ham += np.arange(t, dtype=np.int32)[:, None]
            first = np.minimum.reduceat(ham, offsets[:-1], axis=0).reshape(-1) % t  # (n * B,)
            block[empty] = vals[first[empty]]
        # (r, n, B, p) -> (n, r, B, p): buckets concatenated, then repetitions
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3)).reshape(n, self.fde_dim)

    def _final(self, fde: F32) -> F32:
        if self.d_final is None:
            return fde
        out = np.zeros((fde.shape[0], self.d_final), np.float32)
        signed = fde[:, self._sk_order] * self.sketch_sign[self._sk_order].astype(np.float32)
        out[:, self._sk_targets] = np.add.reduceat(signed, self._sk_starts, axis=1)
        return out

    # -- persistence
    def state(self) -> dict[str, np.ndarray]:
        """The random arrays to save, by file name (``fde_hyperplanes``, ``fde_signs``,
        ``fde_sketch_hash``, ``fde_sketch_sign``); see :meth:`restore`.
        """
        return {
            "fde_hyperplanes": self.hyperplanes,
            "fde_signs": self.signs,
            "fde_sketch_hash": self.sketch_hash,
            "fde_sketch_sign": self.sketch_sign,
        }

    def meta(self) -> dict[str, Any]:
        """The constructor keywords except ``dim`` (JSON-safe), for saving."""
        return {
            "r": self.r,
            "k": self.k,
            "p": self.p,
            "d_final": self.d_final,
            "seed": self.seed,
            "fill_empty": self.fill_empty,
        }

    def restore(self, arrays: dict[str, np.ndarray], where: Path) -> None:
        """Use saved random matrices (identical results across numpy versions)."""
        for name, mine in self.state().items():
            arr = arrays.get(name)
            if arr is None or arr.shape != mine.shape or arr.dtype != mine.dtype:
                got = "nothing" if arr is None else f"{arr.dtype} {arr.shape}"
                raise ValueError(
                    f"{where / (name + '.npy')} must hold {mine.dtype} {mine.shape}, got {got}"
                )
        self.hyperplanes = np.ascontiguousarray(arrays["fde_hyperplanes"])
        self.signs = np.ascontiguousarray(arrays["fde_signs"])
        self.sketch_hash = np.ascontiguousarray(arrays["fde_sketch_hash"])
        self.sketch_sign = np.ascontiguousarray(arrays["fde_sketch_sign"])
        self._cache()

    def nbytes(self) -> int:
        """RAM bytes of the random arrays, with the cached float32 projection matrix."""
        return sum(int(a.nbytes) for a in self.state().values()) + int(self._proj.nbytes)
