"""ALPT: low-precision embeddings with a learned step size per row (Li et al., AAAI 2023)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from embedlab._validation import BudgetError, check_int_in_range, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._bits import pack_bits, packed_bytes, unpack_bits
from embedlab.tables._registry import register_table

__all__ = ["ALPTTable"]

MAX_BITS = 16
#: the clipping level never falls below this (a row whose step reached 0 could not recover)
_MIN_CLIP = 1e-6


def _row_bytes(dim: int, bits: int) -> int:
    """One row: ``dim`` codes bit-packed to whole bytes, plus its float32 step."""
    return packed_bytes(dim, bits) + FLOAT32_BYTES


def _scaled_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` in the forward, ``scale * grad`` in the backward (LSQ's gradient scale)."""
    y = x * scale
    return (x - y).detach() + y


@register_table("alpt")
class ALPTTable(EmbeddingTable):
    """Adaptive low-precision training: b-bit codes with a learned float32 step per row.

    Every row ``i`` is stored as integer codes ``c`` in ``[-2**(b-1), 2**(b-1) - 1]``
    and one step ``s_i``; its embedding is ``s_i * (c + o)``, with ``o = 0`` for
    ``b >= 2`` and ``o = 1/2`` for ``b = 1`` (the 1-bit grid ``s * {-1, 0}`` of the
    brief would force every weight to be <= 0; the half-step offset makes it the
    symmetric binary grid ``{-s/2, +s/2}``).

    Training is low-precision training (LPT) as in the paper: the float32 ``weight``
    parameter always lies on its row's grid. After every optimizer step
    (:meth:`on_step`) the Adam-updated weights ``w`` are re-quantised with
    *stochastic* rounding, ``c = clamp(floor(w / s - o + u))``, ``u ~ U[0, 1)``.
    The step is learned by the same Adam through the LSQ estimator (Esser et al.,
    ICLR 2020): the derivative of the fake-quantised value ``s * (clamp(round(w/s - o)) + o)``
    w.r.t. ``s`` is ``c + o - w/s`` inside the clipping range (the rounding residual)
    and the clipping bound ``+ o`` outside, and the step's gradient is scaled by
    ``1 / sqrt(dim * max(qmax, 1))``. Since the weights are snapped to the grid, that
    derivative is taken where the rounding happens: :meth:`quantize` stores it per
    weight (a training-time buffer), and the next forward, whose loss is evaluated
    at exactly those quantised weights, routes ``dL/de * slope`` to the step. So the
    step's gradient is the gradient of the loss at ``Q(w_{t+1}; s)``, as in ALPT's
    alternating update, without a second forward pass.

    The step is parameterised by the row's clipping level ``clip = s * (qmax + o)``,
    the largest value the row can hold: Adam moves every parameter by about ``lr``
    per step whatever its scale, so in this unit the grid's range moves as fast as
    the weights themselves (a raw step of ~1e-4 would be destroyed by updates of
    ~1e-3). ``step = clip / (qmax + o)``; :attr:`step` returns it.

    Per-row steps (the paper's feature-wise granularity): frequent and rare ids
    have row norms orders of magnitude apart, and one step per field would either
    clip the large rows or waste the grid on the small ones. It costs one float32
    per row, counted in the budget (4 of the 20 bytes of an 8-bit row at dim 16).

    Budget: ``b`` is the largest width in 1..16 with
    ``n_rows * (ceil(dim * b / 8) + 4) <= budget`` (or ``bits=`` forced). Below one
    bit per weight the budget is unreachable: the maximum compression is
    ``4 * dim / (ceil(dim / 8) + 4)`` (10.67x at dim 16), and :class:`BudgetError` says
    so. :meth:`memory_bytes` counts the deployable form, the bit-packed codes plus
    the steps (:meth:`export_packed`), not the float32 master copy.

    Li et al., "Adaptive Low-Precision Training for Embeddings in Click-Through Rate
    Prediction", AAAI 2023. Claimed: 8-bit embeddings trained without accuracy loss.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation and the rounding noise.
        bits: force the bit width (1..16) instead of taking the largest that fits.
        init_std: std of the normal initialisation before the first quantisation.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; codes
        ``(n_rows, dim)`` int8 (b <= 8) or int16, steps ``(n_rows,)`` float32.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = ALPTTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=4)
        >>> table.bits, table.memory_bytes() <= table.budget_bytes
        (6, True)
        >>> table(torch.tensor([[3, 6]])).shape
        torch.Size([1, 2, 16])
    """

    export_format = "alpt"
    offsets: torch.Tensor
    slope: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        bits: int | None = None,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.init_std = check_positive_float("init_std", init_std)
        self.n_rows = sum(self.cardinalities)
        self.bits = self._choose_bits(bits)
        self.qmin = -(1 << (self.bits - 1))
        self.qmax = (1 << (self.bits - 1)) - 1
        self.offset = 0.5 if self.bits == 1 else 0.0
        self.grad_scale = 1.0 / math.sqrt(self.dim * max(self.qmax, 1))

        cards = torch.tensor(self.cardinalities, dtype=torch.int64)
        self.register_buffer("offsets", torch.cumsum(cards, 0) - cards, persistent=False)
        gen = torch.Generator().manual_seed(self.seed)
        w = torch.empty(self.n_rows, self.dim).normal_(0.0, self.init_std, generator=gen)
        self.weight = nn.Parameter(w)
        self.clip = nn.Parameter(w.abs().amax(dim=1).clamp(min=_MIN_CLIP))
        # dQ/ds of the last quantisation, per weight: training-time only, not deployed
        self.register_buffer("slope", torch.zeros(self.n_rows, self.dim), persistent=False)
        self._gen: torch.Generator | None = None
        self.register_load_state_dict_post_hook(_forget_slope)  # type: ignore[no-untyped-call]
        self.quantize()

    def _choose_bits(self, bits: int | None) -> int:
        budget, n = self.budget_bytes, self.n_rows
        fitting = [b for b in range(1, MAX_BITS + 1) if n * _row_bytes(self.dim, b) <= budget]
        if bits is None:
            if not fitting:
                need = n * _row_bytes(self.dim, 1)
                reach = self.full_bytes / need
                raise BudgetError(
                    f"alpt cannot reach compression {self.compression:g} for these fields: "
                    f"needs at least {need} bytes, budget is {budget} (1 bit per weight plus "
                    f"a float32 step per row is {_row_bytes(self.dim, 1)} bytes per row, so "
                    f"alpt reaches compression at most {reach:.4g}x here)"
                )
            return fitting[-1]
        b = check_int_in_range("bits", bits, 1, MAX_BITS)
        if b not in fitting:
            need = n * _row_bytes(self.dim, b)
            largest = f"the largest width that fits is {fitting[-1]}" if fitting else "none fits"
            raise BudgetError(
                f"alpt cannot reach compression {self.compression:g} with bits={b}: "
                f"needs at least {need} bytes, budget is {budget}; {largest}"
            )
        return b

    # --- quantisation -------------------------------------------------------
    @property
    def step(self) -> torch.Tensor:
        """The step size of every row ``(n_rows,)``: ``clip / (qmax + o)``."""
        return self.clip / (self.qmax + self.offset)

    def _generator(self, device: torch.device) -> torch.Generator:
        if self._gen is None or self._gen.device != device:
            self._gen = torch.Generator(device=device).manual_seed(self.seed)
        return self._gen

    @torch.no_grad()
    def quantize(self) -> None:
        """Snap ``weight`` to the grid of the current steps with stochastic rounding.

        Also records LSQ's ``dQ/ds`` at the rounded point for the next forward.
        """
        self.clip.clamp_(min=_MIN_CLIP)
        w = self.weight
        s = self.step.unsqueeze(1)  # (n_rows, 1)
        x = w / s - self.offset  # in code units
        near = x.round()
        # Values already on the grid (up to float32 error) stay put: quantising is idempotent.
        on_grid = (x - near).abs() <= (self.qmax + 1) * 2.0**-20
        noise = torch.rand(x.shape, generator=self._generator(w.device), device=w.device)
        codes = torch.where(on_grid, near, torch.floor(x + noise))
        inside = (x >= self.qmin) & (x <= self.qmax)
        codes.clamp_(self.qmin, self.qmax)
        self.slope.copy_(torch.where(inside, codes - x, codes + self.offset))
        w.copy_((codes + self.offset) * s)

    def on_step(self, step: int) -> None:
        self.quantize()

    def export_quantized(self) -> dict[str, torch.Tensor]:
        """Integer codes ``(n_rows, dim)`` (int8 for b <= 8, else int16) and steps ``(n_rows,)``.

        Row ``i`` reads ``steps[i] * (codes[i] + o)``.
        """
        with torch.no_grad():
            s = self.step.unsqueeze(1)
            codes = torch.round(self.weight / s - self.offset)
        dtype = torch.int8 if self.bits <= 8 else torch.int16
        return {"codes": codes.to(dtype).cpu(), "steps": self.step.detach().cpu().clone()}

    def export_packed(self) -> dict[str, torch.Tensor]:
        """The deployable form: ``packed (n_rows, ceil(dim * b / 8))`` uint8 (codes shifted
        to ``[0, 2**b)``, bit-packed row by row) and ``steps (n_rows,)`` float32."""
        q = self.export_quantized()
        packed = pack_bits(q["codes"].to(torch.int64) - self.qmin, self.bits)
        return {"packed": packed, "steps": q["steps"]}

    @torch.no_grad()
    def load_packed(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Load the output of :meth:`export_packed` (same fields, dim and bits)."""
        if set(tensors) != {"packed", "steps"}:
            raise ValueError(f"tensors must have keys ['packed', 'steps'], got {sorted(tensors)}")
        steps = tensors["steps"]
        if steps.dtype != torch.float32 or tuple(steps.shape) != (self.n_rows,):
            raise ValueError(
                f"steps must be float32 of shape ({self.n_rows},), "
                f"got {steps.dtype} of shape {tuple(steps.shape)}"
            )
        codes = unpack_bits(tensors["packed"], self.bits, self.dim) + self.qmin
        if codes.shape[0] != self.n_rows:
            raise ValueError(f"packed must have {self.n_rows} rows, got {codes.shape[0]}")
        dev = self.weight.device
        steps = steps.to(dev)
        self.clip.copy_(steps * (self.qmax + self.offset))
        self.weight.copy_((codes.to(dev, torch.float32) + self.offset) * steps.unsqueeze(1))
        self.slope.zero_()

    # --- protocol -----------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bit-packed codes plus one float32 step per row: ``n_rows * (ceil(dim*b/8) + 4)``."""
        return self.n_rows * _row_bytes(self.dim, self.bits)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        rows = ids + self.offsets  # (batch, n_fields)
        out = nn.functional.embedding(rows, self.weight)  # on the grid: the quantised value
        if torch.is_grad_enabled() and self.clip.requires_grad:
            s = _scaled_grad(self.step, self.grad_scale)[rows]  # (batch, n_fields)
            slope = nn.functional.embedding(rows, self.slope)  # (batch, n_fields, dim)
            out = out + (s - s.detach()).unsqueeze(-1) * slope  # adds 0; carries dL/ds
        return out

    def describe(self) -> dict[str, object]:
        step = self.step.detach()
        return {
            "bits": self.bits,
            "bytes_per_row": _row_bytes(self.dim, self.bits),
            "step_granularity": "row",
            "step_mean": float(step.mean()),
            "step_max": float(step.max()),
        }


def _forget_slope(module: nn.Module, incompatible_keys: object) -> None:
    """Loaded weights were not rounded here: no pending LSQ derivative."""
    if isinstance(module, ALPTTable):
        module.slope.zero_()
