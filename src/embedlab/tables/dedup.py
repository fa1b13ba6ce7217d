"""Dedup: train a full table, then merge near-identical rows behind bit-packed pointers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from embedlab._validation import (
    BudgetError,
    check_bool,
    check_choice,
    check_int,
    check_positive_float,
)
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._bits import index_bits, pack_bits, packed_bytes, unpack_bits
from embedlab.tables._phases import PhaseContext
from embedlab.tables._registry import register_table

__all__ = ["DedupTable"]

#: k-means++ seeding is sequential in k; above this many clusters seed with a random sample
_PLUSPLUS_MAX_K = 8192
#: entries of one (points x centroids) distance block
_BLOCK = 1 << 24


def _dedup_bytes(n_ids: int, dim: int, unique: int) -> int:
    """``unique`` float32 rows plus ``n_ids`` pointers of ``ceil(log2 unique)`` bits."""
    return unique * dim * FLOAT32_BYTES + packed_bytes(n_ids, index_bits(unique))


def _largest_unique(n_ids: int, dim: int, budget: int) -> int:
    """The most unique rows (``<= n_ids``) whose rows and pointers fit; 0 if not even 2 do."""
    best = 0
    for bits in range(1, index_bits(n_ids) + 1):
        room = budget - packed_bytes(n_ids, bits)
        u = min(1 << bits, n_ids, room // (dim * FLOAT32_BYTES)) if room > 0 else 0
        if u >= 2:
            best = max(best, u)
    return best


def _nearest(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid of every point, in row blocks.

    ``argmin_j ||x - c_j||^2 = argmin_j (||c_j||^2 - 2 x . c_j)``: one fused matmul per block.
    """
    step = max(1, _BLOCK // max(1, c.shape[0]))
    c_sq = c.square().sum(1)
    out = [
        torch.addmm(c_sq, x[lo : lo + step], c.T, alpha=-2.0).argmin(dim=1)
        for lo in range(0, x.shape[0], step)
    ]
    return torch.cat(out)


def _kmeans(
    x: torch.Tensor, weights: torch.Tensor, k: int, iters: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted k-means: k-means++ seeding (D^2 x weight sampling), then Lloyd iterations
    (an emptied cluster is re-seeded at the point its centroid represents worst).

    Args:
        x: ``(n, dim)`` distinct points, ``n > k``.
        weights: ``(n,)`` positive point weights.

    Returns:
        centroids ``(k, dim)`` and the assignment ``(n,)`` int64.
    """
    n = x.shape[0]
    if k <= _PLUSPLUS_MAX_K:
        chosen = [int(torch.multinomial(weights, 1, generator=gen))]
        d2 = (x - x[chosen[0]]).square().sum(1)
        for _ in range(k - 1):
            p = d2 * weights
            nxt = int(torch.multinomial(p, 1, generator=gen)) if float(p.sum()) > 0 else 0
            chosen.append(nxt)
            d2 = torch.minimum(d2, (x - x[nxt]).square().sum(1))
        centroids = x[torch.tensor(chosen)].clone()
    else:
        centroids = x[torch.multinomial(weights, k, replacement=False, generator=gen)].clone()
    assign = torch.full((n,), -1, dtype=torch.int64)
    for _ in range(iters):
        new_assign = _nearest(x, centroids)
        if torch.equal(new_assign, assign):
            break
        assign = new_assign
        mass = torch.zeros(k).index_add_(0, assign, weights)
        sums = torch.zeros(k, x.shape[1]).index_add_(0, assign, x * weights.unsqueeze(1))
        filled = mass > 0
        centroids[filled] = sums[filled] / mass[filled].unsqueeze(1)
        n_empty = k - int(filled.sum())
        if n_empty:  # re-seed empty clusters at the worst-represented points
            err = (x - centroids[assign]).square().sum(1) * weights
            centroids[~filled] = x[err.topk(n_empty).indices]
    return centroids, _nearest(x, centroids)


@register_table("dedup")
class DedupTable(EmbeddingTable):
    """Deduplication: a full table is trained, then its rows are merged into ``U`` unique
    rows that every id reaches through a bit-packed pointer, and the ``U`` rows are
    fine-tuned with the pointers fixed.

    Phases: ``"train"`` trains one float32 row per id (over the budget while it trains:
    the full table is a training-time structure). :meth:`end_phase` of ``"train"``
    clusters the rows with weighted k-means (weights = training frequency + 1 when the
    trainer gave ``start_phase`` the data, else uniform; k-means++ seeding and Lloyd
    iterations, seeded, in torch): exact duplicates are merged first (so identical
    rows always share storage), and if at most ``U`` distinct rows remain the merge is
    lossless. ``"finetune"`` trains the ``U`` centroids with the pointers fixed.

    Clustering is global, not per field: near-duplicate rows are found across fields
    too, k-means itself decides how many unique rows each region of the space gets,
    and one pointer width serves every id.

    Budget: ``U`` is the largest count with
    ``U * dim * 4 + ceil(n_ids * ceil(log2 U) / 8) <= budget`` (no other overhead:
    the field offsets follow from the cardinalities). :meth:`memory_bytes` always
    reports that deployable form (:meth:`export_deduplicated`), also before the
    merge; after it, with the number of rows actually kept (fewer when the table had
    fewer distinct rows). :class:`BudgetError` when even ``U = 2`` with 1-bit pointers
    does not fit: the most a table can be compressed is
    ``n_ids * dim * 4 / (2 * dim * 4 + ceil(n_ids / 8))`` (about ``32 * dim`` for many ids).

    The deduplication baseline ("Dedup") of the VLDB 2024 embedding-compression
    benchmark (Zhang et al., "Experimental Analysis of Large-scale Learnable Vector
    Storage Compression"), with k-means in place of its LSH grouping.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation and the k-means seeding.
        iters: most Lloyd iterations of the k-means.
        weighted: weight the k-means by training frequency (when known).
        init_std: std of the normal initialisation.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; ``weight``
        ``(n_ids, dim)`` while training, ``(U, dim)`` after the merge; ``pointers``
        ``(n_ids,)`` int64 (identity before the merge).

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = DedupTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=10)
        >>> table.planned_rows, table.pointer_bits
        (83, 7)
        >>> table.deduplicate()
        >>> table.weight.shape, table.memory_bytes() <= table.budget_bytes
        (torch.Size([83, 16]), True)
    """

    phases = ("train", "finetune")
    export_format = "dedup"
    resume_attrs = ("unique_rows", "relative_error")
    offsets: torch.Tensor
    pointers: torch.Tensor
    counts: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        iters: int = 20,
        weighted: bool = True,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.iters = check_int("iters", iters, min_value=1)
        self.weighted = check_bool("weighted", weighted)
        self.init_std = check_positive_float("init_std", init_std)
        cards = self.cardinalities
        self.n_ids = sum(cards)
        planned = _largest_unique(self.n_ids, self.dim, self.budget_bytes)
        if planned < 2:
            need = _dedup_bytes(self.n_ids, self.dim, 2)
            raise BudgetError(
                f"dedup cannot reach compression {self.compression:g} for these fields: "
                f"needs at least {need} bytes, budget is {self.budget_bytes} (2 unique rows "
                f"and 1-bit pointers: dedup reaches compression at most "
                f"{self.full_bytes / need:.4g}x here)"
            )
        self.planned_rows = planned
        self.unique_rows = planned  # rows of the deployed form (fewer if fewer are distinct)
        self.relative_error: float | None = None

        cards_t = torch.tensor(cards, dtype=torch.int64)
        self.register_buffer("offsets", torch.cumsum(cards_t, 0) - cards_t, persistent=False)
        self.register_buffer("pointers", torch.arange(self.n_ids))
        self.register_buffer("counts", torch.ones(self.n_ids), persistent=False)
        gen = torch.Generator().manual_seed(self.seed)
        w = torch.empty(self.n_ids, self.dim).normal_(0.0, self.init_std, generator=gen)
        self.weight = nn.Parameter(w)
        self.register_load_state_dict_pre_hook(_resize_for_state)  # type: ignore[no-untyped-call]

    @property
    def deduplicated(self) -> bool:
        """Whether the rows were merged (fewer stored rows than ids)."""
        return self.weight.shape[0] < self.n_ids

    @property
    def pointer_bits(self) -> int:
        """Bits of one packed pointer: ``ceil(log2 unique_rows)``, at least 1."""
        return index_bits(self.unique_rows)

    # --- phases ---------------------------------------------------------------
    def start_phase(self, phase: str, ctx: PhaseContext) -> None:
        check_choice("phase", phase, self.phases)
        if phase == "train" and self.weighted:
            ids = np.asarray(ctx.train.ids)
            counts = np.concatenate(
                [np.bincount(ids[:, f], minlength=c) for f, c in enumerate(self.cardinalities)]
            )
            self.counts.copy_(torch.from_numpy(counts[: self.n_ids] + 1.0))

    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        check_choice("phase", phase, self.phases)
        if phase == "train":
            self.deduplicate()

    @torch.no_grad()
    def deduplicate(self) -> None:
        """Merge the current rows into at most :attr:`planned_rows` rows (seeded k-means)."""
        # Tiny sequential tensor ops: extra threads only add contention (measured 20x
        # slower with 2 threads on a loaded 2-core machine).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._merge()
        finally:
            torch.set_num_threads(threads)

    def _merge(self) -> None:
        dev = self.weight.device
        rows = self.weight.detach().cpu()
        # weight of every current row: the frequencies of the ids pointing at it
        mass = torch.zeros(rows.shape[0]).index_add_(0, self.pointers.cpu(), self.counts.cpu())
        used = mass > 0
        distinct, inverse = torch.unique(rows[used], dim=0, return_inverse=True)
        merged_mass = torch.zeros(distinct.shape[0]).index_add_(0, inverse, mass[used])
        if distinct.shape[0] <= self.planned_rows:
            centroids, assign = distinct, torch.arange(distinct.shape[0])
        else:
            gen = torch.Generator().manual_seed(self.seed)
            centroids, assign = _kmeans(distinct, merged_mass, self.planned_rows, self.iters, gen)
            # drop clusters that ended empty, so every stored row is pointed to
            kept, assign = torch.unique(assign, return_inverse=True)
            centroids = centroids[kept]
        row_to_unique = torch.zeros(rows.shape[0], dtype=torch.int64)
        row_to_unique[used] = assign[inverse]
        new_pointers = row_to_unique[self.pointers.cpu()]
        full = rows[self.pointers.cpu()]
        err = (full - centroids[new_pointers]).square().sum(1)
        self.relative_error = (
            float(
                (err * self.counts.cpu()).sum()
                / (full.square().sum(1) * self.counts.cpu()).sum().clamp(min=1e-30)
            )
            ** 0.5
        )
        self.unique_rows = int(centroids.shape[0])
        self.weight = nn.Parameter(centroids.to(dev))
        self.pointers.copy_(new_pointers.to(dev))

    def export_deduplicated(self) -> dict[str, torch.Tensor]:
        """The deployable form: ``rows (U, dim)`` float32 and ``pointers`` bit-packed,
        ``ceil(n_ids * pointer_bits / 8)`` uint8 (unpack with :func:`_bits.unpack_bits`).
        Before :meth:`deduplicate` the table is not in that form: ValueError."""
        if not self.deduplicated:
            raise ValueError(
                "the table must be deduplicated (end_phase('train') or deduplicate()) "
                "before export_deduplicated"
            )
        return {
            "rows": self.weight.detach().cpu().clone(),
            "pointers": pack_bits(self.pointers.cpu(), self.pointer_bits),
        }

    def _pending_phase(self) -> str | None:
        """Deployable once the rows are the ``unique_rows`` of :meth:`memory_bytes` (merged)."""
        return None if self.weight.shape[0] == self.unique_rows else "train"

    def unpack_pointers(self, packed: torch.Tensor) -> torch.Tensor:
        """Pointers ``(n_ids,)`` int64 from the packed bytes of :meth:`export_deduplicated`."""
        return unpack_bits(packed, self.pointer_bits, self.n_ids)

    # --- protocol -------------------------------------------------------------
    def memory_bytes(self) -> int:
        """``U * dim * 4 + ceil(n_ids * ceil(log2 U) / 8)`` for the deployed ``U``."""
        return _dedup_bytes(self.n_ids, self.dim, self.unique_rows)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(self.pointers[ids + self.offsets], self.weight)

    def describe(self) -> dict[str, object]:
        return {
            "planned_unique_rows": self.planned_rows,
            "unique_rows": self.unique_rows,
            "pointer_bits": self.pointer_bits,
            "deduplicated": self.deduplicated,
            "clustering": "global weighted k-means" if self.weighted else "global k-means",
            "relative_error": self.relative_error,
        }


def _resize_for_state(
    module: nn.Module,
    state_dict: dict[str, torch.Tensor],
    prefix: str,
    local_metadata: object,
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """Loading a merged state into a table that has not merged (or vice versa) adopts the
    state's row count, so a deduplicated model can be saved and reloaded."""
    if not isinstance(module, DedupTable):
        return
    w = state_dict.get(prefix + "weight")
    if not isinstance(w, torch.Tensor) or w.dim() != 2 or w.shape[1] != module.dim:
        return
    n = int(w.shape[0])
    if n != module.weight.shape[0] and 2 <= n <= module.n_ids:
        module.weight = nn.Parameter(torch.empty(n, module.dim, device=module.weight.device))
        module.unique_rows = module.planned_rows if n == module.n_ids else n
