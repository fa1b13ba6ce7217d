"""How :class:`embedlab.index.ivf.IVF` encodes and scores each kind of code index.

A codec wraps the (empty) code index the factory built from the token after ``IVF{nlist}``
and uses its trained parameters; the codes themselves live in the IVF's inverted lists.
Each codec gives, for a query ``q``, the query side of its scan kernel such that the
kernel's sum is ``q . v_hat`` (plus ``qconst(q)``), ``v_hat`` the decoded code:

============  ========  =====  ==========================================================
code          residual  kernel  stored per vector
============  ========  =====  ==========================================================
``Flat``      no        dot     the float32 vector (``4 dim`` bytes)
``Int8``      yes       dot     ``dim`` uint8 codes of ``x - c``; ``q . v_hat =
                                (q * scale) . code + q . lo``
``PQ{m}``     yes       lut     ``m`` bytes of ``x - c`` (8-bit codes only); table entry
                                ``[j, b]`` = ``q_j . centroid_jb``
``Binary``    yes       lut     ``ceil(dim / 8)`` sign bytes of ``x - c`` and a float32
                                scale ``alpha``; ``q . v_hat = alpha (q . s)``
                                (``residual=false``: signs of ``x``, no scale, the
                                scores of a flat :class:`~embedlab.index.binary.Binary`)
``BEBR{u}``   no        lut     ``u`` sign planes; cosine of the decoded codes, the query
                                side from the binarised query (SDC, as ``BEBR``)
============  ========  =====  ==========================================================

Residual codes encode ``x - c`` (``c`` the centroid of the vector's list), so the code's
precision is spent on the spread inside a list (Jégou et al., TPAMI 2011, section IV.A);
the scan adds ``q . c`` per list. BEBR codes (and Binary codes with ``residual=false``)
encode the vector itself: their scores do not decode to a vector (sign patterns,
directions) and stay comparable across lists, equal to those of the flat index. Residual
sign codes rank far better inside a list: on 1M x 384 (``benchmarks/ivf_vs_faiss.py --code
binary``) the plain sign codes stop at recall@10 0.83 after re-ranking 100 candidates,
whatever nprobe (see :class:`~embedlab.index.ivf.IVF` for the residual figures). Code
widths are rounded up to whole uint32 words for the LUT kernel
(:func:`embedlab.index._scan.code_width`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from embedlab.index._base import F32, VectorIndex
from embedlab.index._scan import code_width, pq_tables, sign_tables
from embedlab.index.bebr import BEBR, pack_planes
from embedlab.index.bebr import net_module as bebr_net
from embedlab.index.binary import DEFAULT_QUERY_BITS, Binary
from embedlab.index.flat import Flat
from embedlab.index.int8 import Int8
from embedlab.index.pq import PQ

__all__ = ["CODE_FORMS", "Codec", "make_codec"]

CODE_FORMS = "Flat, Int8, Binary, PQ{m} (8-bit codes) or BEBR{bits}"


def _fit_raw(code: VectorIndex, v: F32) -> None:
    """Train ``code`` on ``v`` as given: residuals must not be normalised as ``train`` would
    under ``metric="cos"``."""
    code._train(np.ascontiguousarray(v, dtype=np.float32))
    code._trained = True


class Codec:
    """Encoding and query side of one code type (see the module docstring)."""

    kind: ClassVar[Literal["lut", "dot"]] = "dot"
    residual: ClassVar[bool] = False
    #: scores are ``q . s`` whatever the metric (sign codes): no l2 terms
    metric_free: ClassVar[bool] = False
    per_code: ClassVar[tuple[str, ...]] = ()

    def __init__(self, code: VectorIndex) -> None:
        self.code = code
        self.dim = code.dim

    @property
    def width(self) -> int:
        return self.dim

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def fit(self, v: F32) -> None:
        """Train on ``v (n, dim)`` (residuals when :attr:`residual`)."""

    def encode(self, v: F32) -> tuple[np.ndarray, dict[str, F32]]:
        """Codes ``(n, width)`` of ``v (n, dim)`` and the per-code arrays it needs."""
        return np.ascontiguousarray(v, dtype=np.float32), {}

    def decode(self, codes: np.ndarray, extra: dict[str, F32]) -> F32:
        """``v_hat (n, dim)`` of ``codes (n, width)`` and their per-code arrays (for the l2
        norms)."""
        return np.asarray(codes, dtype=np.float32)

    def query(self, q: F32) -> tuple[F32, F32]:
        """``(query side, qconst (n_q,))``: tables ``(n_q, n_sub, 256)`` for a LUT kernel or
        vectors ``(n_q, width)`` for a dot kernel."""
        return q, np.zeros(q.shape[0], np.float32)


class _FlatCodec(Codec):
    pass


class _Int8Codec(Codec):
    residual = True

    def __init__(self, code: Int8) -> None:
        super().__init__(code)
        self.int8 = code

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    def fit(self, v: F32) -> None:
        _fit_raw(self.int8, v)

    def encode(self, v: F32) -> tuple[np.ndarray, dict[str, F32]]:
        return self.int8.encode(v), {}

    def decode(self, codes: np.ndarray, extra: dict[str, F32]) -> F32:
        return self.int8.decode(codes)

    def query(self, q: F32) -> tuple[F32, F32]:
        # q . (lo + scale * code) = (q * scale) . code + q . lo
        return (q * self.int8._scale).astype(np.float32), (q @ self.int8._lo).astype(np.float32)


class _PQCodec(Codec):
    kind = "lut"
    residual = True

    def __init__(self, code: PQ) -> None:
        super().__init__(code)
        self.pq = code
        self._cb: F32 | None = None

    @property
    def width(self) -> int:
        return code_width(self.pq.m)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def _codebooks(self) -> F32:
        """``(m, 256, dsub)``, copied out of faiss once per training."""
        if self._cb is None:
            self._cb = self.pq.codebooks
        return self._cb

    def fit(self, v: F32) -> None:
        _fit_raw(self.pq, v)
        self._cb = None

    def encode(self, v: F32) -> tuple[np.ndarray, dict[str, F32]]:
        out = np.zeros((v.shape[0], self.width), np.uint8)
        out[:, : self.pq.m] = self.pq.encode(v)
        return out, {}

    def decode(self, codes: np.ndarray, extra: dict[str, F32]) -> F32:
        return self.pq.decode(codes[:, : self.pq.m])

    def query(self, q: F32) -> tuple[F32, F32]:
        return pq_tables(q, self._codebooks), np.zeros(q.shape[0], np.float32)


class _BinaryCodec(Codec):
    kind = "lut"
    metric_free = True

    @property
    def n_bytes(self) -> int:
        return -(-self.dim // 8)

    @property
    def width(self) -> int:
        return code_width(self.n_bytes)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    def encode(self, v: F32) -> tuple[np.ndarray, dict[str, F32]]:
        out = np.zeros((v.shape[0], self.width), np.uint8)
        out[:, : self.n_bytes] = np.packbits(v > 0, axis=1, bitorder="little")
        return out, {}

    def query(self, q: F32) -> tuple[F32, F32]:
        return sign_tables(q, self.n_bytes), np.zeros(q.shape[0], np.float32)


class _ResidualBinaryCodec(_BinaryCodec):
    """Signs of the residual ``r = x - c`` and one scale per code, ``alpha = mean |r_i|``
    (the least-squares scale of a sign vector: ``argmin_a |r - a s|^2 = r . s / dim``), so
    ``v_hat = alpha s`` and the scan's ``vscale * (q . s)`` is ``q . v_hat``."""

    residual = True
    metric_free = False
    per_code = ("vscale",)

    def encode(self, v: F32) -> tuple[np.ndarray, dict[str, F32]]:
        codes, _ = super().encode(v)
        alpha = np.abs(v).mean(axis=1, dtype=np.float64).astype(np.float32)
        return codes, {"vscale": alpha}

    def decode(self, codes: np.ndarray, extra: dict[str, F32]) -> F32:
        bits = np.unpackbits(codes[:, : self.n_bytes], axis=1, bitorder="little")[:, : self.dim]
        return (extra["vscale"][:, None] * (2.0 * bits - 1.0)).astype(np.float32)


class _BEBRCodec(Codec):
    """Cosine of decoded codes ``c = sum_i 2^-i d_i``: ``sum_i 2^-i (c_q / |c_q|) . d_i^x``
    from per-plane sign tables, times ``vscale = 1 / |c_x|`` (0 for a stored zero vector)."""

    kind = "lut"
    metric_free = True
    per_code = ("vscale",)

    def __init__(self, code: BEBR) -> None:
        super().__init__(code)
        self.bebr = code

    @property
    def plane_bytes(self) -> int:
        return self.bebr._words * 8

    @property
    def width(self) -> int:
        return self.bebr.bits * self.plane_bytes

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    def fit(self, v: F32) -> None:
        self.bebr.train(v)

    def encode(self, v: F32) -> tuple[np.ndarray, dict[str, F32]]:
        words = pack_planes(bebr_net().encode_planes(self.bebr.net, v))  # (n, bits * W) uint64
        norms = np.linalg.norm(self.bebr.decode(words), axis=1)
        scale = np.where(v.any(axis=1) & (norms > 0), 1.0 / np.maximum(norms, 1e-30), 0.0)
        return np.ascontiguousarray(words).view(np.uint8), {"vscale": scale.astype(np.float32)}

    def query(self, q: F32) -> tuple[F32, F32]:
        cq = self.bebr.decode(
            pack_planes(bebr_net().encode_planes(self.bebr.net, q))
        )  # (n_q, d_code)
        norms = np.linalg.norm(cq, axis=1, keepdims=True)
        unit = np.where(q.any(axis=1, keepdims=True), cq / np.maximum(norms, 1e-30), 0.0)
        base = sign_tables(unit.astype(np.float32), self.plane_bytes)  # (n_q, W * 8, 256)
        weights = 0.5 ** np.arange(self.bebr.bits, dtype=np.float32)
        tables = weights[None, :, None, None] * base[:, None]  # (n_q, bits, W * 8, 256)
        return tables.reshape(q.shape[0], -1, 256), np.zeros(q.shape[0], np.float32)


def make_codec(code: VectorIndex, *, residual: bool | None = None) -> Codec:
    """The codec of an empty ``code`` index; the error lists the supported codes.

    ``residual``: ``None`` takes the code's default (module docstring); ``False`` keeps
    ``Binary`` codes of the vectors themselves (scores equal to a flat ``Binary``'s, the
    format of indexes saved before residual sign codes); other codes have one form only.
    """
    if residual is not None and type(code) is not Binary:
        raise ValueError(
            f"residual must be left unset for {code.spec()!r} codes (only Binary codes come "
            f"in both forms), got {residual!r}"
        )
    if type(code) is PQ and code.nbits == 8:
        return _PQCodec(code)
    if (
        type(code) is Binary
        and code.scoring == "asym"
        and not code.center
        and code.query_bits in (0, DEFAULT_QUERY_BITS)
    ):
        return _BinaryCodec(code) if residual is False else _ResidualBinaryCodec(code)
    if type(code) is Flat:
        return _FlatCodec(code)
    if type(code) is Int8:
        return _Int8Codec(code)
    if type(code) is BEBR:
        return _BEBRCodec(code)
    why = ""
    if type(code) is Binary:
        if code.scoring != "asym":
            why = " (Binary codes are scanned asymmetrically: scoring must be 'asym')"
        elif code.center:
            why = " (IVF lists hold uncentred sign codes: center must be false)"
        else:
            why = " (IVF lists score sign codes with the float query: query_bits has no effect)"
    raise ValueError(f"code must be an empty {CODE_FORMS} index{why}, got {code.spec()!r}")
