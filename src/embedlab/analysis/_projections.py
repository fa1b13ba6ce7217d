"""Random linear maps from a d-dim subspace to the D parameters of a network.

Three families, all seeded and all returning ``(D,)`` from ``theta_d`` of shape ``(d,)``:

- :class:`DenseProjection`: Gaussian ``P (D, d)`` with unit-length columns (Li et al. 2018,
  "Measuring the Intrinsic Dimension of Objective Landscapes").
- :class:`SparseProjection`: very sparse random projection, density ``1/sqrt(D)`` (Li, Hastie &
  Church 2006, "Very Sparse Random Projections"), stored as a torch sparse matrix.
- :class:`FastfoodProjection`: ``V = H G Pi H B / (||G|| sqrt(D))`` (Le, Sarlos & Smola 2013,
  "Fastfood"), as used by Li et al. 2018 and Aghajanyan et al. 2021 (SAID); O(D log D) time,
  O(D) memory, through :func:`fast_walsh_hadamard`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from embedlab._validation import check_choice, check_int, check_int_in_range

__all__ = [
    "PROJECTIONS",
    "DenseProjection",
    "FastfoodProjection",
    "Projection",
    "ProjectionKind",
    "SparseProjection",
    "fast_walsh_hadamard",
    "make_projection",
]

#: random projection family: :class:`DenseProjection`, :class:`SparseProjection` or
#: :class:`FastfoodProjection`
ProjectionKind = Literal["dense", "sparse", "fastfood"]
PROJECTIONS: tuple[str, ...] = ("dense", "sparse", "fastfood")

# Rows of the dense Gaussian generated from one seed; fixed so that stored and chunked
# projections with the same seed are the same matrix.
_DENSE_BLOCK_ROWS = 4096
_DEFAULT_DENSE_MAX_BYTES = 256 * 2**20


def _fwht_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Iterative butterfly over the last axis (length a power of two); Sylvester ordering."""
    n = x.shape[-1]
    lead = x.shape[:-1]
    y = x.reshape(-1, n)
    h = 1
    while h < n:
        y = y.view(y.shape[0], n // (2 * h), 2, h)  # (rows, blocks, pair, h)
        a, b = y[:, :, 0, :], y[:, :, 1, :]
        y = torch.stack((a + b, a - b), dim=2).view(-1, n)
        h *= 2
    return y.view(*lead, n)


class _FWHT(torch.autograd.Function):
    """H is symmetric, so the backward pass is the same transform of the gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return _fwht_no_grad(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _fwht_no_grad(grad)


def fast_walsh_hadamard(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised Walsh–Hadamard transform ``H x`` over the last axis, in O(n log n).

    ``H`` is the Sylvester Hadamard matrix (``scipy.linalg.hadamard(n)``: entries +-1,
    ``H H = n I``). Differentiable (the gradient is ``H`` applied to the incoming gradient).

    Args:
        x: ``(..., n)`` floating tensor, ``n`` a power of two.

    Returns:
        ``(..., n)`` tensor, ``H`` applied to every row.

    Example:
        >>> fast_walsh_hadamard(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        tensor([1., 1., 1., 1.])
    """
    n = int(x.shape[-1]) if x.dim() else 0
    if n < 1 or n & (n - 1):
        raise ValueError(f"the last axis of x must have a power-of-two length, got {n}")
    out: torch.Tensor = _FWHT.apply(x)  # type: ignore[no-untyped-call]
    return out


class Projection(nn.Module):
    """Base class: a fixed (non-trainable) linear map ``theta_d (d,) -> (D,)``.

    Subclasses keep their random state in buffers, so ``.to(device)`` moves them and they hold
    no trainable parameters.
    """

    kind: str = "projection"

    def __init__(self, n_params: int, d: int, *, seed: int = 0) -> None:
        super().__init__()
        self.n_params = check_int("n_params", n_params, min_value=1)
        self.d = check_int_in_range("d", d, 1, self.n_params, why=" (D, the number of parameters)")
        self.seed = check_int("seed", seed, min_value=0)

    def _check_input(self, theta_d: torch.Tensor) -> None:
        if theta_d.shape != (self.d,):
            raise ValueError(f"theta_d must have shape ({self.d},), got {tuple(theta_d.shape)}")

    def memory_bytes(self) -> int:
        """Bytes held by the projection's buffers (not counting transient chunks)."""
        total = 0
        for buf in self.buffers():
            if buf.is_sparse:
                total += buf._values().numel() * buf._values().element_size()
                total += buf._indices().numel() * buf._indices().element_size()
            else:
                total += buf.numel() * buf.element_size()
        return total

    def extra_repr(self) -> str:
        return f"D={self.n_params}, d={self.d}, seed={self.seed}"


def _block_seed(seed: int, block: int) -> int:
    state = np.random.SeedSequence([seed, block]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & (2**63 - 1)


class _ChunkedMatmul(torch.autograd.Function):
    """``G @ v`` with ``G`` regenerated block by block in forward and backward (never stored)."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, proj: DenseProjection) -> torch.Tensor:
        ctx.proj = proj
        out = torch.empty(proj.n_params, dtype=v.dtype, device=v.device)
        for start, block in proj._blocks(v.device, v.dtype):
            out[start : start + block.shape[0]] = block @ v
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        proj: DenseProjection = ctx.proj
        acc = torch.zeros(proj.d, dtype=grad.dtype, device=grad.device)
        for start, block in proj._blocks(grad.device, grad.dtype):
            acc += block.T @ grad[start : start + block.shape[0]]
        return acc, None


class DenseProjection(Projection):
    """Gaussian ``P (D, d)`` whose columns are normalised to unit length (Li et al. 2018).

    Rows are drawn in blocks of 4,096, each block from its own seed derived from ``seed``, so
    the matrix does not depend on how it is held:

    - **stored** when ``4 * D * d <= max_bytes`` (default 256 MiB): one ``(D, d)`` float32
      buffer, ``forward`` is one mat-vec.
    - **chunked** otherwise: only the ``d`` column norms are kept (``8 d`` bytes); every
      ``forward`` and ``backward`` regenerates the Gaussian block by block (transient memory
      ``4 * 4096 * d`` bytes) — exact, but it draws ``D * d`` normals twice per training step.
      For D ~ 2e5 and d ~ 1e3 prefer ``"fastfood"`` or ``"sparse"``.

    Args:
        n_params: D, the output length.
        d: subspace dimension, ``1 <= d <= D``.
        seed: seed of the Gaussian.
        max_bytes: largest matrix kept in memory.

    Example:
        >>> p = DenseProjection(1000, 10, seed=0)
        >>> p(torch.zeros(10)).shape
        torch.Size([1000])
    """

    kind = "dense"
    weight: torch.Tensor | None
    inv_norms: torch.Tensor

    def __init__(
        self, n_params: int, d: int, *, seed: int = 0, max_bytes: int = _DEFAULT_DENSE_MAX_BYTES
    ) -> None:
        super().__init__(n_params, d, seed=seed)
        self.max_bytes = check_int("max_bytes", max_bytes, min_value=0)
        self.stored = 4 * self.n_params * self.d <= self.max_bytes
        if self.stored:
            g = torch.cat([b for _, b in self._blocks(torch.device("cpu"), torch.float32)])
            norms = torch.linalg.vector_norm(g.double(), dim=0)
            self.register_buffer("weight", (g.double() / norms).float())
        else:
            sq = torch.zeros(self.d, dtype=torch.float64)
            for _, block in self._blocks(torch.device("cpu"), torch.float32):
                sq += block.double().square().sum(dim=0)
            norms = sq.sqrt()
            self.register_buffer("weight", None)
        self.register_buffer("inv_norms", (1.0 / norms).float())

    def _blocks(self, device: torch.device, dtype: torch.dtype) -> Any:
        """Yield ``(first_row, block (rows, d))`` of the unnormalised Gaussian."""
        for block, start in enumerate(range(0, self.n_params, _DENSE_BLOCK_ROWS)):
            rows = min(_DENSE_BLOCK_ROWS, self.n_params - start)
            gen = torch.Generator().manual_seed(_block_seed(self.seed, block))
            g = torch.randn(rows, self.d, generator=gen, dtype=torch.float32)
            yield start, g.to(device=device, dtype=dtype)

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        """``(d,) -> (D,)``: ``P theta_d``."""
        self._check_input(theta_d)
        if self.weight is not None:
            return self.weight.to(theta_d.dtype) @ theta_d
        v = theta_d * self.inv_norms.to(theta_d.dtype)  # P = G diag(1/||g_j||)
        out: torch.Tensor = _ChunkedMatmul.apply(v, self)  # type: ignore[no-untyped-call]
        return out


class SparseProjection(Projection):
    """Very sparse random projection (Li, Hastie & Church 2006), columns of unit length.

    Each entry is non-zero with probability ``1/s``, ``s = sqrt(D)``, with a random sign; each
    column is then scaled to unit length (all its non-zeros are ``+-1/sqrt(k_j)``, ``k_j`` the
    column's non-zero count). A column that drew no non-zero (probability ``~exp(-sqrt(D))``)
    gets one, so every column has unit length. Memory: ``~ d sqrt(D)`` non-zeros, 20 bytes each
    (COO int64 indices + float32 value) — 13 MB for D = 2e5, d = 1,500.

    Example:
        >>> p = SparseProjection(10_000, 50, seed=0)
        >>> p(torch.ones(50)).shape
        torch.Size([10000])
    """

    kind = "sparse"
    matrix: torch.Tensor

    def __init__(self, n_params: int, d: int, *, seed: int = 0) -> None:
        super().__init__(n_params, d, seed=seed)
        rng = np.random.default_rng(self.seed)
        density = 1.0 / math.sqrt(self.n_params)
        counts = np.maximum(rng.binomial(self.n_params, density, size=self.d), 1)
        rows = np.concatenate(
            [rng.choice(self.n_params, size=int(k), replace=False) for k in counts]
        )
        cols = np.repeat(np.arange(self.d), counts)
        signs = rng.integers(0, 2, size=rows.size) * 2 - 1
        values = signs / np.sqrt(np.repeat(counts, counts))
        indices = torch.from_numpy(np.stack([rows, cols]).astype(np.int64))
        mat = torch.sparse_coo_tensor(
            indices,
            torch.from_numpy(values.astype(np.float32)),
            (self.n_params, self.d),
            check_invariants=True,
        ).coalesce()
        self.register_buffer("matrix", mat)

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        """``(d,) -> (D,)``: ``P theta_d`` with a sparse-dense product."""
        self._check_input(theta_d)
        mat = self.matrix if self.matrix.dtype == theta_d.dtype else self.matrix.to(theta_d.dtype)
        out: torch.Tensor = torch.sparse.mm(mat, theta_d.unsqueeze(1))  # (D, 1)
        return out.squeeze(1)


class FastfoodProjection(Projection):
    """Fastfood: ``V = H G Pi H B / (||G|| sqrt(D))``, rows ``[:D]``, columns ``[:d]``.

    ``L`` = the next power of two ``>= D``; ``B`` random signs ``(L,)``, ``Pi`` a random
    permutation of ``L``, ``G`` standard normal ``(L,)``, ``H`` the ``L x L`` Walsh–Hadamard
    matrix. ``theta_d`` is zero-padded to ``L``, transformed, and the first ``D`` entries
    kept. The scale follows Li et al.'s implementation: the full ``L x L`` matrix has columns of
    length exactly ``sqrt(L / D)``, so the kept ``D`` rows have columns of length about 1.
    Since ``d <= D <= L`` one block suffices. Memory ``~16 L`` bytes; time O(L log L).

    Example:
        >>> p = FastfoodProjection(1000, 20, seed=0)
        >>> p(torch.zeros(20)).shape
        torch.Size([1000])
    """

    kind = "fastfood"
    signs: torch.Tensor
    perm: torch.Tensor
    gaussian: torch.Tensor

    def __init__(self, n_params: int, d: int, *, seed: int = 0) -> None:
        super().__init__(n_params, d, seed=seed)
        self.length = 1 << max(0, (self.n_params - 1).bit_length())
        gen = torch.Generator().manual_seed(self.seed)
        signs = torch.randint(0, 2, (self.length,), generator=gen).float() * 2 - 1
        perm = torch.randperm(self.length, generator=gen)
        gaussian = torch.randn(self.length, generator=gen)
        self.register_buffer("signs", signs)
        self.register_buffer("perm", perm)
        self.register_buffer("gaussian", gaussian)
        self.scale = 1.0 / math.sqrt(self.n_params * float(gaussian.double().square().sum()))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        """``(d,) -> (D,)``: ``V theta_d`` in O(L log L)."""
        self._check_input(theta_d)
        x = nn.functional.pad(theta_d, (0, self.length - self.d))  # (L,)
        x = fast_walsh_hadamard(x * self.signs.to(theta_d.dtype))
        x = x[self.perm] * self.gaussian.to(theta_d.dtype)
        x = fast_walsh_hadamard(x)
        return x[: self.n_params] * self.scale


_KINDS: dict[str, type[DenseProjection | SparseProjection | FastfoodProjection]] = {
    "dense": DenseProjection,
    "sparse": SparseProjection,
    "fastfood": FastfoodProjection,
}


def make_projection(kind: str, n_params: int, d: int, *, seed: int = 0) -> Projection:
    """Build a projection by name: ``"dense"``, ``"sparse"`` or ``"fastfood"``.

    Raises:
        ValueError: an unknown ``kind`` (the message lists the valid ones), or ``d`` outside
            ``[1, n_params]``.
    """
    check_choice("projection", kind, PROJECTIONS)
    return _KINDS[kind](n_params, d, seed=seed)
