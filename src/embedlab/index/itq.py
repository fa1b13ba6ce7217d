"""ITQ: iterative quantisation, sign bits of PCA-projected vectors after a learned rotation.

Paper: Gong, Lazebnik, Gordo, Perronnin, "Iterative Quantization: A Procrustean Approach to
Learning Binary Codes for Large-scale Image Retrieval", TPAMI 2013 (CVPR 2011). A strong
simple baseline for learned binary codes (BEBR, BAE) at an equal number of bits.

Training on a (seeded) sample ``x``: centre with the sample mean ``mu``, project onto the
top ``bits`` principal directions ``W (dim, bits)``, ``V = (x - mu) W``; then alternate, from
a random orthogonal ``R``, ``B = sign(V R)`` and ``R = U Z^T`` where ``V^T B = U S Z^T`` (the
orthogonal Procrustes solution of ``min_R ||B - V R||_F^2`` for fixed ``B``). Each step does
not increase the quantisation loss ``||B - V R||_F^2`` (both are exact minimisers of it in
their variable), recorded per iteration in ``train_losses``. A vector's code is
``sign((x - mu) W R)``: ``bits`` bits packed in ``ceil(bits / 64)`` uint64 words.

Scoring: ``"hamming"`` (default, the paper's) binarises the query the same way;
``"asym"`` scores the float query projected without centring, ``(q W R) . s``, the
asymmetric scoring of :class:`embedlab.index.binary.Binary` (``x ~ mu + a W R s``, so
``q . x ~ q . mu + a (q W R) . s`` with ``q . mu`` the same for every vector).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self, cast

import numpy as np
import numpy.typing as npt

from embedlab._validation import check_choice, check_int
from embedlab.index._base import F32, I64, Metric, VectorIndex, register_index
from embedlab.index._grow import Growing, grow
from embedlab.index.binary import U64, asym_search, hamming_search, pack_signs

__all__ = ["ITQ", "itq_rotation", "pca_directions"]

F64 = npt.NDArray[np.float64]
Scoring = Literal["hamming", "asym"]
SCORINGS = ("hamming", "asym")


def pca_directions(x: F64, bits: int) -> tuple[F64, F64]:
    """Mean ``(dim,)`` and the top ``bits`` principal directions ``(dim, bits)`` of ``x``.

    Directions are the eigenvectors of the covariance with the largest eigenvalues, in
    decreasing order, each with its largest-magnitude entry positive (a deterministic sign).
    """
    mu = x.mean(axis=0)
    xc = x - mu
    cov = xc.T @ xc / max(x.shape[0] - 1, 1)
    vals, vecs = np.linalg.eigh(cov)  # ascending
    w = vecs[:, np.argsort(-vals, kind="stable")[:bits]]
    flip = np.sign(w[np.argmax(np.abs(w), axis=0), np.arange(bits)])
    return mu, w * np.where(flip == 0, 1.0, flip)


def itq_rotation(v: F64, r0: F64, iterations: int) -> tuple[F64, list[float]]:
    """Gong & Lazebnik's ITQ from the rotation ``r0 (bits, bits)`` on ``v (n, bits)``.

    Returns the rotation ``R`` and the loss ``||sign(V R) - V R||_F^2`` after each
    iteration (``iterations + 1`` values: the first for ``r0``).
    """
    r = r0.copy()

    def loss(rot: F64) -> float:
        vr = v @ rot
        return float(np.sum((np.where(vr >= 0, 1.0, -1.0) - vr) ** 2))

    losses = [loss(r)]
    for _ in range(iterations):
        b = np.where(v @ r >= 0, 1.0, -1.0)
        u, _s, zt = np.linalg.svd(v.T @ b)
        r = u @ zt
        losses.append(loss(r))
    return r, losses


@register_index("ITQ")
class ITQ(VectorIndex):
    """Iterative quantisation: ``bits`` sign bits of rotated PCA projections per vector.

    ``bits / 8`` bytes per vector (stored in whole 64-bit words) plus the mean and the
    ``dim x bits`` projection (float32, shared, counted in :meth:`memory_bytes`).

    Args:
        dim: vector dimension.
        bits: code bits (PCA dimensions), ``1 <= bits <= dim``.
        metric: ``"cos"``, ``"ip"`` or ``"l2"`` (codes are built from the vectors as the
            metric sees them: L2-normalised under ``"cos"``).
        scoring: ``"hamming"`` (default) or ``"asym"`` (module docstring).
        iterations: ITQ iterations (the paper uses 50).
        max_train: at most this many training vectors are used (a seeded sample).
        seed: seeds the sample and the initial random rotation.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((500, 64)).astype("float32")
        >>> index = ITQ(64, bits=32); index.train(x); index.add(x)
        >>> index.search(x[:2], k=3)[1].shape
        (2, 3)
    """

    needs_training = True
    _codes = Growing()  # (ntotal, ceil(bits / 64)) uint64 packed sign bits

    def __init__(
        self,
        dim: int,
        *,
        bits: int,
        metric: Metric = "cos",
        scoring: Scoring = "hamming",
        iterations: int = 50,
        max_train: int = 50_000,
        seed: int = 0,
    ) -> None:
        super().__init__(dim, metric=metric)
        self.bits = check_int("bits", bits, min_value=1)
        if self.bits > self.dim:
            raise ValueError(
                f"bits must be <= dim (ITQ keeps bits principal directions of the "
                f"{self.dim}-d vectors), got bits={self.bits}"
            )
        self.scoring: Scoring = check_choice("scoring", scoring, SCORINGS)  # type: ignore[assignment]
        self.iterations = check_int("iterations", iterations, min_value=0)
        self.max_train = check_int("max_train", max_train, min_value=2)
        self.seed = check_int("seed", seed, min_value=0)
        self._mean: F32 = np.zeros(self.dim, np.float32)
        self._proj: F32 = np.zeros((self.dim, self.bits), np.float32)  # W R
        self.train_losses: list[float] = []
        self._codes = np.zeros((0, -(-self.bits // 64)), np.uint64)

    def spec(self) -> str:
        opts = [] if self.scoring == "hamming" else [f"scoring={self.scoring}"]
        opts += [] if self.iterations == 50 else [f"iterations={self.iterations}"]
        return f"ITQ{self.bits}({','.join(opts)})" if opts else f"ITQ{self.bits}"

    @property
    def mean(self) -> F32:
        """The training mean ``(dim,)`` float32."""
        return self._mean

    @property
    def projection(self) -> F32:
        """``W R`` ``(dim, bits)`` float32: PCA directions times the learned rotation."""
        return self._proj

    @property
    def codes(self) -> U64:
        """Packed code bits ``(ntotal, ceil(bits / 64))`` uint64."""
        return cast(U64, self._codes)

    def encode(self, x: Any) -> U64:
        """Packed codes of ``x (n, dim)`` (normalised like added vectors)."""
        return self._encode(self._prepare(x, "x"))

    def _encode(self, x: F32) -> U64:
        return pack_signs(((x - self._mean) @ self._proj).astype(np.float32, copy=False))

    # ------------------------------------------------------------------ hooks
    def _min_train_points(self) -> int:
        return 2

    def _train(self, x: F32) -> None:
        rng = np.random.default_rng(self.seed)
        if x.shape[0] > self.max_train:
            x = x[np.sort(rng.choice(x.shape[0], self.max_train, replace=False))]
        mu, w = pca_directions(x.astype(np.float64), self.bits)
        v = (x.astype(np.float64) - mu) @ w
        r0, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
        r, self.train_losses = itq_rotation(v, r0, self.iterations)
        self._mean = mu.astype(np.float32)
        self._proj = (w @ r).astype(np.float32)

    def _add(self, x: F32, ids: I64) -> None:
        grow(self, "_codes").append(self._encode(x))

    def _search(self, q: F32, k: int) -> tuple[F32, I64]:
        if self.scoring == "asym":
            return asym_search(np.ascontiguousarray(q @ self._proj), self._codes, k)
        return hamming_search(self._encode(q), self._codes, k)

    def _remove(self, positions: I64) -> None:
        self._codes = np.delete(self._codes, positions, axis=0)

    def _memory_bytes(self) -> int:
        return grow(self, "_codes").nbytes + self._mean.nbytes + self._proj.nbytes

    # ------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"codes": self._codes, "mean": self._mean, "projection": self._proj}
        meta = {
            "bits": self.bits,
            "scoring": self.scoring,
            "iterations": self.iterations,
            "max_train": self.max_train,
            "seed": self.seed,
            "train_losses": self.train_losses,
        }
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        obj = cls(
            meta["dim"],
            bits=meta["bits"],
            metric=meta["metric"],
            scoring=meta["scoring"],
            iterations=meta["iterations"],
            max_train=meta["max_train"],
            seed=meta["seed"],
        )
        expect = {
            "codes": (np.uint64, (None, -(-obj.bits // 64))),
            "mean": (np.float32, (obj.dim,)),
            "projection": (np.float32, (obj.dim, obj.bits)),
        }
        for name, (dtype, shape) in expect.items():
            arr = np.ascontiguousarray(arrays[name])
            ok = arr.dtype == dtype and len(arr.shape) == len(shape)
            ok = ok and all(s is None or s == a for s, a in zip(shape, arr.shape, strict=False))
            if not ok:
                raise ValueError(
                    f"{folder}: {name} must be {np.dtype(dtype)} of shape {shape}, "
                    f"got {arr.dtype} {arr.shape}"
                )
        obj._codes = np.ascontiguousarray(arrays["codes"])
        obj._mean = np.array(arrays["mean"])
        obj._proj = np.array(arrays["projection"])
        obj.train_losses = [float(v) for v in meta.get("train_losses", [])]
        return obj
