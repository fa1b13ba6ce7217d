"""Task vectors, task arithmetic and aTLAS (learned anisotropic scaling of task vectors).

- :func:`task_vector`: ``finetuned - base`` for every floating tensor of the state dict;
- :func:`task_arithmetic`: ``base + lam * sum_t tau_t`` (one scalar for all tasks and
  all parameters, Ilharco et al. 2023) -- the baseline;
- :class:`AnisotropicMerge` / :func:`atlas`: ``theta = base + sum_t sum_b lambda[t, b] *
  tau_t[b]`` with one learned coefficient per task ``t`` and *parameter block* ``b`` (one
  block = one parameter tensor of the model), learned by gradient descent on the merged
  model's loss on a few labelled shots. The merged weights are evaluated with
  :func:`torch.func.functional_call`, so only the ``n_tasks x n_blocks`` coefficients are
  trained. Coefficients start at 0 (the base model), as in the reference code.

Zhang et al., "Knowledge Composition using Task Vectors with Learned Anisotropic
Scaling" (aTLAS), NeurIPS 2024.

Blocks are the module's ``named_parameters``; buffers (e.g. BatchNorm statistics) are not
composed by :func:`atlas` and stay those of ``base``. :func:`task_arithmetic` composes
every floating state-dict entry.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embedlab._validation import check_int, check_positive_float
from embedlab.training._state_dicts import Ingredient, check_same_parameters, state_of

__all__ = [
    "AnisotropicMerge",
    "AtlasResult",
    "atlas",
    "few_shot_subset",
    "task_arithmetic",
    "task_vector",
]

_WHY = "task vectors need one architecture"

#: a task vector: parameter name -> ``finetuned - base``
TaskVector = dict[str, torch.Tensor]


def _floating(t: torch.Tensor) -> bool:
    return t.is_floating_point() or t.is_complex()


def task_vector(base: Ingredient, finetuned: Ingredient) -> TaskVector:
    """The task vector ``finetuned - base`` (Ilharco et al. 2023), per parameter tensor.

    Args:
        base: the pre-trained model (or its state dict).
        finetuned: the same architecture after fine-tuning on one task.

    Returns:
        ``{name: finetuned[name] - base[name]}`` for every floating state-dict entry
        (non-floating entries such as ``num_batches_tracked`` are skipped).

    Raises:
        ValueError: the two models differ in keys or in the shape of a parameter (the
            message names the parameter).

    Example:
        >>> from torch import nn
        >>> a = nn.Linear(2, 1)
        >>> b = nn.Linear(2, 1)
        >>> tau = task_vector(a, b)
        >>> bool(torch.allclose(tau["bias"], b.bias - a.bias))
        True
    """
    b = state_of(0, base)
    f = state_of(1, finetuned)
    check_same_parameters(b, f, "finetuned", "base", _WHY)
    return {k: (f[k] - v).detach().clone() for k, v in b.items() if _floating(v)}


def _vectors(base_state: Mapping[str, torch.Tensor], vectors: Sequence[object]) -> list[TaskVector]:
    """Task vectors from task vectors (mappings) or fine-tuned models (modules)."""
    if isinstance(vectors, (nn.Module, Mapping)) or not isinstance(vectors, Sequence):
        raise TypeError(
            f"vectors must be a sequence of task vectors or fine-tuned modules, got "
            f"{type(vectors).__name__}"
        )
    if len(vectors) == 0:
        raise ValueError("vectors must hold at least 1 task vector, got 0")
    floating = {k: v for k, v in base_state.items() if _floating(v)}
    out: list[TaskVector] = []
    for i, item in enumerate(vectors):
        if isinstance(item, nn.Module):
            out.append(task_vector(dict(base_state), item))
            continue
        vec = state_of(i, item)  # type: ignore[arg-type]
        check_same_parameters(floating, vec, f"vectors[{i}]", "base", _WHY)
        out.append(vec)
    return out


def task_arithmetic(
    base: Ingredient, vectors: Sequence[TaskVector | nn.Module], lam: float = 1.0
) -> dict[str, torch.Tensor]:
    """``base + lam * sum_t vectors[t]``: single-coefficient task arithmetic.

    Args:
        base: the pre-trained model or its state dict.
        vectors: task vectors (from :func:`task_vector`) or fine-tuned modules (their
            task vector against ``base`` is taken).
        lam: the one scaling coefficient (any finite float; negative = task negation).

    Returns:
        a state dict for ``base``'s architecture (non-floating entries from ``base``).

    Raises:
        ValueError: no vector, or a vector whose keys or shapes differ from ``base``.
    """
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not np.isfinite(lam):
        raise ValueError(f"lam must be a finite number, got {lam!r}")
    state = state_of(0, base)
    vecs = _vectors(state, vectors)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if not _floating(v):
            out[k] = v.clone()
            continue
        delta = torch.stack([vec[k].to(v) for vec in vecs]).sum(0)
        out[k] = (v + float(lam) * delta).detach()
    return out


class AnisotropicMerge(nn.Module):
    """``base`` with weights ``theta_b = base_b + sum_t coef[t, b] * tau_t[b]`` (aTLAS).

    Only :attr:`coef` (``(n_tasks, n_blocks)``, one per task and parameter tensor) is a
    trainable parameter; the base weights and the task vectors are frozen buffers. The
    forward pass runs ``base`` through :func:`torch.func.functional_call` with the merged
    weights, so gradients flow to the coefficients. The frozen tensors stay on ``base``'s
    device (build the merge from a module already on the device you train on).

    Args:
        base: the pre-trained module (not modified).
        vectors: task vectors or fine-tuned modules of ``base``'s architecture.
        init: initial value of every coefficient (0 = start at ``base``, the reference
            code's choice).
        blockwise: one coefficient per block (aTLAS); ``False`` learns one per task.

    Attributes:
        block_names: the parameter names, in the column order of :attr:`coef`.
    """

    def __init__(
        self,
        base: nn.Module,
        vectors: Sequence[TaskVector | nn.Module],
        *,
        init: float = 0.0,
        blockwise: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Module):
            raise TypeError(f"base must be a torch.nn.Module, got {type(base).__name__}")
        init = float(init)
        if not np.isfinite(init):
            raise ValueError(f"init must be finite, got {init}")
        state = state_of(0, base)
        vecs = _vectors(state, vectors)
        self.module = copy.deepcopy(base)
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.block_names = [n for n, _ in base.named_parameters()]
        self.n_tasks = len(vecs)
        self.blockwise = bool(blockwise)
        self._base = [p.detach().clone() for _, p in base.named_parameters()]
        self._tau = [
            torch.stack([vec[n].to(p) for vec in vecs])
            for n, p in zip(self.block_names, self._base, strict=True)
        ]
        shape = (self.n_tasks, len(self.block_names)) if self.blockwise else (self.n_tasks, 1)
        self.coef = nn.Parameter(torch.full(shape, init))

    def merged_parameters(self) -> dict[str, torch.Tensor]:
        """The merged weights (differentiable in :attr:`coef`)."""
        out: dict[str, torch.Tensor] = {}
        for j, (name, p, tau) in enumerate(
            zip(self.block_names, self._base, self._tau, strict=True)
        ):
            c = self.coef[:, j if self.blockwise else 0].to(p.dtype)
            out[name] = p + torch.tensordot(c, tau, dims=1)
        return out

    def forward(self, *args: object, **kwargs: object) -> torch.Tensor:
        """The base module's forward with the merged weights."""
        out: torch.Tensor = torch.func.functional_call(
            self.module, self.merged_parameters(), args, kwargs
        )
        return out

    def merged_state_dict(self) -> dict[str, torch.Tensor]:
        """A plain state dict of the merged model (buffers from ``base``)."""
        state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        with torch.no_grad():
            state.update({k: v.detach().clone() for k, v in self.merged_parameters().items()})
        return state

    def merged_module(self) -> nn.Module:
        """A copy of ``base`` holding the merged weights."""
        m = copy.deepcopy(self.module)
        m.load_state_dict(self.merged_state_dict())
        for p in m.parameters():
            p.requires_grad_(True)
        return m


def few_shot_subset(
    x: torch.Tensor, y: torch.Tensor, shots: int, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``shots`` random examples of every class of ``y`` (all of a class if it has fewer)."""
    shots = check_int("shots", shots, min_value=1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"few_shot_data must have as many labels as inputs, got {x.shape[0]} inputs "
            f"and {y.shape[0]} labels"
        )
    rng = np.random.default_rng(seed)
    labels = y.detach().cpu().numpy()
    keep: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.extend(rng.permutation(idx)[:shots].tolist())
    sel = torch.as_tensor(sorted(keep), dtype=torch.long)
    return x[sel], y[sel]


@dataclass
class AtlasResult:
    """What :func:`atlas` learned.

    Attributes:
        model: a copy of ``base`` holding the merged weights.
        state_dict: the merged weights.
        coefficients: ``(n_tasks, n_blocks)`` learned coefficients (``(n_tasks, 1)`` when
            not blockwise).
        block_names: parameter names, the columns of ``coefficients``.
        losses: the training loss at every step (before each update).
    """

    model: nn.Module
    state_dict: dict[str, torch.Tensor]
    coefficients: torch.Tensor
    block_names: list[str]
    losses: list[float] = field(default_factory=list)


def atlas(
    base: nn.Module,
    vectors: Sequence[TaskVector | nn.Module],
    few_shot_data: tuple[torch.Tensor, torch.Tensor],
    *,
    shots: int | None = 16,
    steps: int = 200,
    lr: float = 0.05,
    batch_size: int | None = None,
    init: float = 0.0,
    blockwise: bool = True,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
) -> AtlasResult:
    """Learn one coefficient per task vector and parameter block from few shots (aTLAS).

    Minimises ``loss_fn(merged(x), y)`` over the coefficients of an
    :class:`AnisotropicMerge` with Adam; the base weights and task vectors stay fixed.

    Args:
        base: the pre-trained module; its forward must map ``x`` to logits (or whatever
            ``loss_fn`` takes).
        vectors: task vectors (:func:`task_vector`) or fine-tuned modules of ``base``.
        few_shot_data: ``(x, y)`` tensors of the target task.
        shots: examples per class drawn from ``few_shot_data`` (``None``: use all).
        steps: optimisation steps (``0`` returns the initial merge).
        lr: Adam learning rate on the coefficients.
        batch_size: examples per step (``None``: the whole few-shot set every step).
        init: initial coefficient value (0: start from ``base``).
        blockwise: ``False`` learns one coefficient per task (isotropic scaling).
        loss_fn: ``(output, y) -> scalar``; default cross-entropy.
        seed: for the shot sampling and batch order.

    Returns:
        an :class:`AtlasResult`.

    Raises:
        ValueError: vectors of another architecture (naming the parameter), bad
            ``shots`` / ``steps`` / ``lr`` / ``batch_size``, or inputs and labels of
            different lengths.
    """
    if not (isinstance(few_shot_data, (tuple, list)) and len(few_shot_data) == 2):
        raise TypeError("few_shot_data must be an (x, y) pair of tensors")
    x, y = (torch.as_tensor(v) for v in few_shot_data)
    if shots is not None:
        x, y = few_shot_subset(x, y, shots, seed=seed)
    elif x.shape[0] != y.shape[0]:
        raise ValueError(
            f"few_shot_data must have as many labels as inputs, got {x.shape[0]} and {y.shape[0]}"
        )
    steps = check_int("steps", steps, min_value=0)
    lr = check_positive_float("lr", lr)
    n = int(x.shape[0])
    if n == 0:
        raise ValueError("few_shot_data must hold at least 1 example, got 0")
    bs = n if batch_size is None else check_int("batch_size", batch_size, min_value=1)
    criterion = F.cross_entropy if loss_fn is None else loss_fn
    merge = AnisotropicMerge(base, vectors, init=init, blockwise=blockwise)
    merge.module.eval()
    opt = torch.optim.Adam([merge.coef], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    order = torch.randperm(n, generator=gen)
    pos = 0
    for _ in range(steps):
        if bs >= n:
            idx = torch.arange(n)
        else:
            if pos + bs > n:
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos : pos + bs]
            pos += bs
        loss = criterion(merge(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(float(loss.detach()))
    return AtlasResult(
        model=merge.merged_module(),
        state_dict=merge.merged_state_dict(),
        coefficients=merge.coef.detach().clone(),
        block_names=list(merge.block_names),
        losses=losses,
    )
