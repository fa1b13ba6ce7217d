"""AutoDim (Zhao et al., WWW 2021): per-field embedding dim searched with Gumbel-softmax."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from embedlab._validation import check_int, check_int_tuple, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES
from embedlab.tables._dimsearch import SearchTable, budget_error
from embedlab.tables._inference import project
from embedlab.tables._phases import PhaseContext
from embedlab.tables._registry import register_table

__all__ = ["AutoDimTable", "field_bytes"]

#: annealing length when the table searches without a training context
_DEFAULT_ANNEAL_STEPS = 1000


def field_bytes(cardinality: int, d: int, dim: int) -> int:
    """Deployable bytes of one field at candidate dim ``d``: its ``(card, d)`` table and
    ``(d, dim)`` projection, or the folded ``(card, dim)`` table ``W @ P`` when that is
    no larger (the same function, since the projection is linear)."""
    return FLOAT32_BYTES * min(cardinality * d + d * dim, cardinality * dim)


@register_table("autodim")
class AutoDimTable(SearchTable):
    """AutoDim: each field picks one of several candidate dims, searched end to end.

    Every field ``f`` has, for every candidate dim ``d`` (``candidates`` limited to
    ``<= dim``), its own table ``(card_f, d)`` and linear projection ``(d, dim)``.
    Architecture weights ``a[f, d]`` (initialised equal) mix the projected candidates:
    ``e_f = sum_d w[f, d] * W_{f,d}[id] @ P_{f,d}`` with ``w = softmax((a + g) / tau)``,
    ``g`` Gumbel noise drawn once per training step (from a generator seeded by
    ``(seed, step)``, both persistent buffers, so it is reproducible and survives a
    state-dict round trip) and ``softmax(a / tau)`` without noise in eval mode. The
    temperature anneals exponentially from ``tau_start`` to ``tau_end`` over the search
    phase's largest step count (``ctx.steps_per_epoch * ctx.max_epochs``). The
    candidates are stored side by side, as column blocks of one table ``weight`` and row
    blocks of one projection per field, so a step costs one lookup and one batched
    matmul: scaling block ``k`` of the projection by ``w[f, k]`` mixes the candidates.

    Phases:
        ``search``: tables, projections and ``a`` train jointly (the paper updates ``a`` on
        validation batches, DARTS-style; one optimizer keeps the trainer unchanged).
        ``end_phase("search")``: each field takes its argmax candidate; while the choice
        is over budget, the field whose downgrade to a smaller candidate loses the least
        architecture weight per byte saved is downgraded.
        ``retrain``: each field reads only its chosen block, projected (the other blocks
        get zero gradients), warm started from the search.

    Budget: ``sum_f field_bytes(card_f, d_f, dim) <= budget_bytes`` with
    :func:`field_bytes` (table plus projection, or the folded table when smaller). The
    smallest form puts every field at its smallest candidate; when even that does not
    fit, :class:`~embedlab.BudgetError` (the message gives the largest compression).
    While searching the table holds every candidate (``sum(candidates)`` floats per id,
    about twice a full table at dim 16), as the paper does.

    The paper's batch norm after each projection is left out: projections are drawn with
    std ``1 / sqrt(d)`` so every candidate starts at the same output scale.

    Zhao et al., "AutoDim: Field-aware Embedding Dimension Search in Recommender
    Systems", WWW 2021.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: output embedding dimension.
        compression: the deployable form uses at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation and the Gumbel noise.
        candidates: candidate dims (or a spec string ``"1-2-4-8-16"``); those ``<= dim``
            are used.
        tau_start: Gumbel-softmax temperature at the start of the search.
        tau_end: temperature at the end of the annealing (``<= tau_start``).
        anneal_steps: annealing length in steps; None: the search phase's largest step
            count (1000 without a training context).
        init_std: std of the output embedding at initialisation.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; ``weight``
        ``(sum(cardinalities), sum(candidates))``, ``projection`` ``(n_fields,
        sum(candidates), dim)`` (candidate ``k`` in :meth:`columns` ``(k)``), architecture
        weights ``arch`` ``(n_fields, n_candidates)``.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = AutoDimTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=4)
        >>> table.candidates
        (1, 2, 4, 8, 16)
        >>> table(torch.tensor([[3, 6]])).shape
        torch.Size([1, 2, 16])
    """

    export_format = "chosen"
    # the annealing length start_phase("search") took from the trainer
    resume_attrs = ("_anneal",)
    offsets: torch.Tensor
    choice: torch.Tensor
    step: torch.Tensor
    noise_seed: torch.Tensor
    column_candidate: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        candidates: Sequence[int] | int | str = (1, 2, 4, 8, 16),
        tau_start: float = 1.0,
        tau_end: float = 0.1,
        anneal_steps: int | None = None,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        given = check_int_tuple("candidates", candidates, min_value=1)
        self.candidates: tuple[int, ...] = tuple(sorted({d for d in given if d <= self.dim}))
        if not self.candidates:
            raise ValueError(
                f"candidates must hold at least one dim <= dim={self.dim}, got {given}"
            )
        self.tau_start = check_positive_float("tau_start", tau_start)
        self.tau_end = check_positive_float("tau_end", tau_end)
        if self.tau_end > self.tau_start:
            raise ValueError(
                f"tau_end must be <= tau_start={self.tau_start:g}, got {self.tau_end:g}"
            )
        self.anneal_steps = (
            None if anneal_steps is None else check_int("anneal_steps", anneal_steps, min_value=1)
        )
        self._anneal = self.anneal_steps or _DEFAULT_ANNEAL_STEPS
        self.init_std = check_positive_float("init_std", init_std)
        need = sum(self._bytes_per_candidate()[:, 0].tolist())
        if need > self.budget_bytes:
            raise budget_error(
                self.name, self.compression, need, self.budget_bytes, self.full_bytes
            )

        cards = self.cardinalities
        cards_t = torch.tensor(cards, dtype=torch.int64)
        self.register_buffer("offsets", torch.cumsum(cards_t, 0) - cards_t, persistent=False)
        self.register_buffer("choice", torch.full((self.n_fields,), -1, dtype=torch.int64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("noise_seed", torch.tensor(self.seed, dtype=torch.int64))
        self._step, self._noise_seed = 0, self.seed
        self._chosen: list[int] = []
        # candidate k owns columns [starts[k], starts[k] + d_k) of the table and rows of
        # the projection; one lookup and one batched matmul serve every candidate
        widths = torch.tensor(self.candidates, dtype=torch.int64)
        self._starts = (torch.cumsum(widths, 0) - widths).tolist()
        self.register_buffer(
            "column_candidate",
            torch.repeat_interleave(torch.arange(len(self.candidates)), widths),
            persistent=False,
        )
        gen = torch.Generator().manual_seed(self.seed)
        width = int(widths.sum())
        self.weight = nn.Parameter(torch.empty(sum(cards), width))
        self.projection = nn.Parameter(torch.empty(self.n_fields, width, self.dim))
        with torch.no_grad():
            for k, d in enumerate(self.candidates):
                cols = self.columns(k)
                self.weight[:, cols].normal_(0.0, self.init_std, generator=gen)
                self.projection[:, cols].normal_(0.0, 1.0 / math.sqrt(d), generator=gen)
        self.arch = nn.Parameter(torch.zeros(self.n_fields, len(self.candidates)))

    # --- structure ----------------------------------------------------------
    def _bytes_per_candidate(self) -> np.ndarray:
        """``(n_fields, n_candidates)`` deployable bytes of each field at each candidate."""
        return np.array(
            [[field_bytes(c, d, self.dim) for d in self.candidates] for c in self.cardinalities],
            dtype=np.int64,
        )

    def columns(self, k: int) -> slice:
        """The columns of candidate ``k`` in :attr:`weight` (and rows of :attr:`projection`)."""
        return slice(self._starts[k], self._starts[k] + self.candidates[k])

    @property
    def dims(self) -> list[int] | None:
        """The chosen dim of every field, or None before the search ends."""
        return [self.candidates[k] for k in self._chosen] if self._chosen else None

    def temperature(self) -> float:
        """The Gumbel-softmax temperature at the current search step."""
        frac = min(1.0, self._step / self._anneal)
        return float(self.tau_start * (self.tau_end / self.tau_start) ** frac)

    def mixing_weights(self) -> torch.Tensor:
        """``(n_fields, n_candidates)`` candidate weights: Gumbel-softmax in training mode,
        ``softmax(a / tau)`` in eval mode."""
        logits: torch.Tensor = self.arch
        if self.training:
            gen = torch.Generator().manual_seed(self._noise_seed * 1_000_003 + self._step)
            u = torch.rand(self.arch.shape, generator=gen).clamp_(1e-10, 1.0 - 1e-7)
            logits = logits - torch.log(-torch.log(u)).to(self.arch.device)
        return torch.softmax(logits / self.temperature(), dim=1)

    # --- forward ------------------------------------------------------------
    def candidate_weights(self) -> torch.Tensor:
        """``(n_fields, n_candidates)``: :meth:`mixing_weights` while searching, the
        one-hot choice after it."""
        if not self.is_searched:
            return self.mixing_weights()
        one_hot = nn.functional.one_hot(self.choice, len(self.candidates))
        return one_hot.to(self.projection.dtype)

    def chosen_blocks(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per field, after the search: its chosen table ``(card_f, d_f)`` and projection
        ``(d_f, dim)`` (views of :attr:`weight` and :attr:`projection`)."""
        out = []
        for f, (k, card) in enumerate(zip(self._chosen, self.cardinalities, strict=True)):
            start, cols = int(self.offsets[f]), self.columns(k)
            out.append((self.weight[start : start + card, cols], self.projection[f, cols]))
        return out

    def _embed_chosen(self, ids: torch.Tensor) -> torch.Tensor:
        """After the search: each field's chosen block, projected with :func:`project` (the
        exported module computes the same operations, so it agrees bit for bit)."""
        outs, order = [], []
        for k in sorted(set(self._chosen)):
            fs = [f for f, c in enumerate(self._chosen) if c == k]
            cols = self.columns(k)
            e = self.weight[ids[:, fs] + self.offsets[fs], cols]  # (batch, n_fs, d)
            outs.append(project(e, self.projection[fs, cols]))  # (batch, n_fs, dim)
            order += fs
        inverse = [order.index(f) for f in range(self.n_fields)]
        return torch.cat(outs, dim=1)[:, inverse]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.is_searched:
            return self._embed_chosen(ids)
        e = nn.functional.embedding(ids + self.offsets, self.weight)  # (batch, n_fields, width)
        # sum_k w[f, k] * e[:, f, cols_k] @ P[f, cols_k]: scale each block of rows by w[f, k]
        scale = self.candidate_weights()[:, self.column_candidate]  # (n_fields, width)
        return torch.einsum("bfc,fcd->bfd", e, self.projection * scale.unsqueeze(-1))

    # --- hooks --------------------------------------------------------------
    def on_step(self, step: int) -> None:
        if not self.is_searched:
            self._step += 1
            self.step.fill_(self._step)

    def _begin_search(self, ctx: PhaseContext | None) -> None:
        if self.anneal_steps is None and ctx is not None:
            self._anneal = max(1, ctx.steps_per_epoch * ctx.max_epochs)

    def _finish_search(self, ctx: PhaseContext | None) -> None:
        weights = torch.softmax(self.arch.detach() / self.temperature(), dim=1).cpu().numpy()
        self.choice.copy_(torch.from_numpy(self.select(weights, self.budget_bytes)))
        self.arch.requires_grad_(False)

    def select(self, weights: np.ndarray, budget_bytes: int) -> np.ndarray:
        """Per-field candidate index: the argmax of ``weights`` ``(n_fields, n_candidates)``,
        then greedy downgrades (least weight lost per byte saved) until the fields fit
        ``budget_bytes``."""
        cost = self._bytes_per_candidate()
        choice = weights.argmax(axis=1)
        fields = np.arange(self.n_fields)
        while cost[fields, choice].sum() > budget_bytes:
            best: tuple[float, int, int] | None = None
            for f in fields:
                for k in range(int(choice[f])):
                    saved = cost[f, choice[f]] - cost[f, k]
                    if saved > 0:
                        ratio = float(weights[f, choice[f]] - weights[f, k]) / float(saved)
                        if best is None or ratio < best[0]:
                            best = (ratio, int(f), k)
            if best is None:  # unreachable: the all-smallest choice fits (checked in __init__)
                raise RuntimeError("autodim found no downgrade that saves bytes")
            choice[best[1]] = best[2]
        return np.asarray(choice, dtype=np.int64)

    def _sync_from_buffers(self) -> None:
        super()._sync_from_buffers()
        self._step, self._noise_seed = int(self.step), int(self.noise_seed)
        self._chosen = [int(k) for k in self.choice.tolist()] if self.is_searched else []

    # --- memory -------------------------------------------------------------
    def deployable_bytes(self) -> int:
        cost = self._bytes_per_candidate()
        return int(sum(int(cost[f, k]) for f, k in enumerate(self._chosen)))

    def _export(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for f, (w, p) in enumerate(self.chosen_blocks()):
                card, d = w.shape
                if card * self.dim <= card * d + d * self.dim:
                    out[f"field{f}.table"] = project(w, p).cpu().numpy()  # (card, dim)
                else:
                    out[f"field{f}.table"] = w.cpu().contiguous().numpy()  # (card, d)
                    out[f"field{f}.projection"] = p.cpu().contiguous().numpy()  # (d, dim)
        return out

    def describe(self) -> dict[str, object]:
        weights = torch.softmax(self.arch.detach() / self.temperature(), dim=1)
        return {
            "candidates": list(self.candidates),
            "searched": self.is_searched,
            "dims": self.dims,
            "arch_weights": [[round(float(x), 4) for x in row] for row in weights.tolist()],
            "temperature": round(self.temperature(), 4),
            "anneal_steps": self._anneal,
        }
