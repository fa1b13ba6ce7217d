"""Soft equivariance under mixed symmetries: one regulariser per symmetry type, tuned levels.

After "Regularizing Towards Soft Equivariance Under Mixed Symmetries" (Kim, Lee, Yang,
Lee, ICML 2023). Data often has symmetries of several types, each only approximately
(say exact rotation invariance, approximate translation invariance, no scaling invariance).
Instead of building the symmetries into the architecture, train any model (an encoder, a
regressor) with one *equivariance regulariser* per symmetry type,

    R_i(f) = E_x E_{g ~ G_i} || f(rho_in(g) x) - rho_out(g) f(x) ||^2,

weighted by a level ``lambda_i`` per type, and tune the levels during training: the level
of type ``i`` is the precision of how equivariant the model is asked to be; a large
learned level says the data has that symmetry, a small one that it does not.

How the levels are tuned here (our choice; the paper's projection-based regulariser on
EMLP weights is not reproduced): a first-order hypergradient on held-out data. One step
of training on ``L_train + sum_i lambda_i R_i`` moves the weights by ``-lr * lambda_i *
grad R_i`` along type ``i``; to first order the validation loss changes by ``-lr * lambda_i
* <grad L_val, grad R_i>``, so ``log lambda_i`` moves up by ``level_lr * cos(grad L_val,
grad R_i)`` (cosine: only the direction counts, which keeps the update scale-free): the
level grows while becoming more equivariant of that type helps held-out data, and shrinks
while it hurts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from embedlab._validation import check_float_in_range, check_int, check_positive_float
from embedlab.training._symmetries import Symmetry, rotation_2d, scaling_2d, translation_2d

__all__ = [
    "SoftEquivarianceRegularizer",
    "SoftEquivarianceResult",
    "Symmetry",
    "equivariance_error",
    "fit_soft_equivariant",
    "rotation_2d",
    "scaling_2d",
    "translation_2d",
]


def equivariance_error(
    model: nn.Module,
    x: torch.Tensor,
    symmetry: Symmetry,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``E_x E_g ||f(rho_in(g) x) - rho_out(g) f(x)||^2`` (a differentiable scalar).

    Args:
        model: the map ``f``; inputs ``x (batch, ...)`` -> outputs ``(batch, ...)``.
        x: a batch of inputs.
        symmetry: the symmetry type.
        n_samples: group elements drawn per input.
        generator: seeds the group elements.
    """
    check_int("n_samples", n_samples, min_value=1)
    xs = x.repeat((n_samples,) + (1,) * (x.dim() - 1))  # (n_samples * batch, ...)
    g = symmetry.sample(xs.shape[0], generator).to(dtype=x.dtype, device=x.device)
    fx = model(xs)
    target = fx if symmetry.act_output is None else symmetry.act_output(fx, g)
    diff = model(symmetry.act_input(xs, g)) - target
    out: torch.Tensor = diff.reshape(diff.shape[0], -1).pow(2).sum(dim=1).mean()
    return out


class SoftEquivarianceRegularizer(nn.Module):
    """``sum_i lambda_i R_i(f)`` over symmetry types, with tunable levels ``lambda_i``.

    Args:
        symmetries: the candidate symmetry types.
        init_level: starting level of every type.
        min_level, max_level: the levels stay in this range.
        n_samples: group elements per input in each ``R_i``.
        seed: seeds the group elements.

    Example:
        >>> reg = SoftEquivarianceRegularizer([rotation_2d(), translation_2d()])
        >>> f = nn.Sequential(nn.Flatten(), nn.Linear(8, 1))
        >>> float(reg(f, torch.randn(16, 4, 2))) >= 0
        True
    """

    def __init__(
        self,
        symmetries: Sequence[Symmetry],
        *,
        init_level: float = 1.0,
        min_level: float = 1e-3,
        max_level: float = 1e3,
        n_samples: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not symmetries:
            raise ValueError("symmetries must hold at least one Symmetry, got none")
        names = [s.name for s in symmetries]
        if len(set(names)) != len(names):
            raise ValueError(f"symmetries must have distinct names, got {names}")
        check_positive_float("init_level", init_level)
        check_positive_float("min_level", min_level)
        check_positive_float("max_level", max_level)
        if not min_level <= init_level <= max_level:
            raise ValueError(
                f"init_level must be in [min_level, max_level] = [{min_level}, {max_level}], "
                f"got {init_level}"
            )
        self.symmetries = list(symmetries)
        self.n_samples = check_int("n_samples", n_samples, min_value=1)
        self.log_min, self.log_max = math.log(min_level), math.log(max_level)
        self.register_buffer(
            "log_levels", torch.full((len(symmetries),), math.log(init_level), dtype=torch.float64)
        )
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def levels(self) -> dict[str, float]:
        """Current level of each symmetry type, by name."""
        lv = self.log_levels.exp().tolist()  # type: ignore[operator]
        return {s.name: float(v) for s, v in zip(self.symmetries, lv, strict=True)}

    def terms(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The unweighted ``R_i`` of each type, ``(n_types,)``."""
        return torch.stack(
            [
                equivariance_error(model, x, s, n_samples=self.n_samples, generator=self.generator)
                for s in self.symmetries
            ]
        )

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``sum_i lambda_i R_i(model)`` on the batch ``x``."""
        weights = self.log_levels.exp().to(x.dtype)  # type: ignore[operator]
        return (weights * self.terms(model, x)).sum()

    def update_levels(self, signals: torch.Tensor, level_lr: float) -> None:
        """``log lambda_i += level_lr * signals_i``, clipped to the level range."""
        with torch.no_grad():
            self.log_levels.add_(level_lr * signals.to(torch.float64))  # type: ignore[operator]
            self.log_levels.clamp_(self.log_min, self.log_max)  # type: ignore[operator]


@dataclass
class SoftEquivarianceResult:
    """What :func:`fit_soft_equivariant` measured.

    Attributes:
        levels: final level per symmetry type.
        level_history: ``(name -> levels)`` every ``log_every`` steps.
        errors: final ``R_i`` of the model on the validation inputs, per type.
        train_loss, val_loss: final mean squared errors.
    """

    levels: dict[str, float]
    errors: dict[str, float]
    train_loss: float
    val_loss: float
    level_history: dict[str, list[float]] = field(default_factory=dict)


def _flat_grad(value: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
    return torch.cat(
        [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def fit_soft_equivariant(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    regularizer: SoftEquivarianceRegularizer | None = None,
    *,
    steps: int = 2000,
    lr: float = 3e-3,
    batch_size: int = 64,
    tune_levels: bool = True,
    level_lr: float = 0.02,
    log_every: int = 100,
    seed: int = 0,
) -> SoftEquivarianceResult:
    """Train ``model`` by MSE plus the regulariser, tuning its levels on ``(x_val, y_val)``.

    Args:
        model: maps inputs ``(n, ...)`` to outputs shaped like ``y (n, ...)``.
        x_train, y_train: training pairs.
        x_val, y_val: held-out pairs that tune the levels (never trained on).
        regularizer: the symmetry types and levels; ``None`` trains a plain model.
        steps: Adam steps.
        lr: Adam learning rate.
        batch_size: rows per step.
        tune_levels: update the levels by the validation hypergradient (else keep them).
        level_lr: step of ``log lambda`` per unit of cosine.
        log_every: steps between entries of ``level_history``.
        seed: seeds the batches.
    """
    check_int("steps", steps, min_value=1)
    check_positive_float("lr", lr)
    check_int("batch_size", batch_size, min_value=1)
    check_float_in_range("level_lr", level_lr, 0.0, 10.0)
    for name, a, b in (("x_train", x_train, y_train), ("x_val", x_val, y_val)):
        if a.shape[0] != b.shape[0] or a.shape[0] == 0:
            raise ValueError(
                f"{name} and its targets must have the same, non-zero number of rows, "
                f"got {a.shape[0]} and {b.shape[0]}"
            )
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    history: dict[str, list[float]] = {}
    if regularizer is not None:
        history = {name: [] for name in regularizer.levels}
    n = x_train.shape[0]
    for step in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=gen)
        xb, yb = x_train[idx], y_train[idx]
        loss = nn.functional.mse_loss(model(xb), yb)
        if regularizer is not None:
            terms = regularizer.terms(model, xb)
            weights = regularizer.log_levels.exp().to(terms.dtype)  # type: ignore[operator]
            if tune_levels and level_lr > 0:
                vb = torch.randint(
                    0, x_val.shape[0], (min(batch_size, x_val.shape[0]),), generator=gen
                )
                val_loss = nn.functional.mse_loss(model(x_val[vb]), y_val[vb])
                g_val = _flat_grad(val_loss, params)
                signals = torch.stack(
                    [
                        nn.functional.cosine_similarity(g_val, _flat_grad(t, params), dim=0)
                        for t in terms
                    ]
                ).detach()
            loss = loss + (weights * terms).sum()
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        if regularizer is not None and tune_levels and level_lr > 0:
            regularizer.update_levels(signals, level_lr)
        if regularizer is not None and (step % log_every == 0 or step == steps - 1):
            for name, v in regularizer.levels.items():
                history[name].append(v)
    with torch.no_grad():
        train_mse = float(nn.functional.mse_loss(model(x_train), y_train))
        val_mse = float(nn.functional.mse_loss(model(x_val), y_val))
    errors: dict[str, float] = {}
    if regularizer is not None:
        with torch.no_grad():
            vals = regularizer.terms(model, x_val)
        errors = {s.name: float(v) for s, v in zip(regularizer.symmetries, vals, strict=True)}
    return SoftEquivarianceResult(
        levels={} if regularizer is None else regularizer.levels,
        errors=errors,
        train_loss=train_mse,
        val_loss=val_mse,
        level_history=history,
    )
