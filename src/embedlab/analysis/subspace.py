"""Objective-landscape intrinsic dimension: train a network in a random subspace.

Li, Farkhoor, Liu & Yosinski (ICLR 2018), "Measuring the Intrinsic Dimension of Objective
Landscapes": freeze the initial parameters ``theta0 (D,)`` and train only ``theta_d (d,)`` in

    theta = theta0 + P theta_d,        P (D, d) a fixed random projection,

then ``d_int90`` is the smallest ``d`` whose validation accuracy reaches 90% of the full
model's. Aghajanyan, Zettlemoyer & Gupta (ACL 2021), "Intrinsic Dimensionality Explains the
Effectiveness of Language Model Fine-Tuning" (SAID) add one trainable scalar per parameter
tensor ``i``: ``theta_i = theta0_i + lambda_i (P theta_d)_i``.

>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> sub = SubspaceModel(net, 5, projection="fastfood")
>>> [name for name, p in sub.named_parameters() if p.requires_grad]
['theta_d']
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from embedlab._validation import (
    check_bool,
    check_int,
    check_int_in_range,
)
from embedlab.analysis._projections import (
    DenseProjection,
    FastfoodProjection,
    Projection,
    ProjectionKind,
    SparseProjection,
    fast_walsh_hadamard,
    make_projection,
)

__all__ = [
    "DenseProjection",
    "FastfoodProjection",
    "Projection",
    "ProjectionKind",
    "SparseProjection",
    "SubspaceModel",
    "fast_walsh_hadamard",
    "make_projection",
]


class SubspaceModel(nn.Module):
    """Wrap any module so that its only trainable parameter is ``theta_d (d,)``.

    ``forward`` computes ``theta = theta0 + P theta_d`` (with SAID:
    ``theta0_i + lambda_i (P theta_d)_i`` per parameter tensor ``i``) and runs the wrapped
    module with :func:`torch.func.functional_call`. ``theta0`` is a frozen flat copy ``(D,)`` of
    the module's parameters at wrap time; buffers (e.g. batch-norm statistics) are the module's
    own and are not reparametrised. The wrapped module stays a registered sub-module (so
    ``.to()``, ``.train()`` and ``.eval()`` reach it) but its parameters are set to
    ``requires_grad=False``; train ``[p for p in model.parameters() if p.requires_grad]``.

    Args:
        module: any ``nn.Module`` with at least one parameter; D = its parameter count
            (tied parameters counted once).
        d: subspace dimension, ``1 <= d <= D``.
        projection: ``"dense"``, ``"sparse"`` or ``"fastfood"``, or a :class:`Projection`
            built for ``(D, d)``.
        seed: seed of the projection.
        said: add one scalar per parameter tensor (initialised to 1).

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> sub = SubspaceModel(net, 10, projection="dense", seed=0)
        >>> bool(torch.equal(sub(torch.ones(2, 4)), net(torch.ones(2, 4))))
        True
    """

    theta0: torch.Tensor

    def __init__(
        self,
        module: nn.Module,
        d: int,
        *,
        projection: ProjectionKind | Projection = "dense",
        seed: int = 0,
        said: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        named = list(module.named_parameters())
        n_params = check_int(
            "the parameter count of module", sum(p.numel() for _, p in named), min_value=1
        )
        self.d = check_int_in_range(
            "d", d, 1, n_params, why=" (D, the number of parameters of the module)"
        )
        self.said = check_bool("said", said)
        self.n_params = n_params
        self.names = [name for name, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        self.module = module
        for _, p in named:
            p.requires_grad_(False)
        flat = torch.cat([p.detach().reshape(-1) for _, p in named]).clone()
        self.register_buffer("theta0", flat)
        if isinstance(projection, Projection):
            if (projection.n_params, projection.d) != (n_params, self.d):
                raise ValueError(
                    f"projection must map d={self.d} to D={n_params}, got "
                    f"d={projection.d}, D={projection.n_params}"
                )
            self.projection = projection
        else:
            self.projection = make_projection(projection, n_params, self.d, seed=seed)
        self.projection.to(flat.device)
        self.theta_d = nn.Parameter(torch.zeros(self.d, dtype=flat.dtype, device=flat.device))
        self.layer_scales: nn.Parameter | None = None
        if self.said:
            self.layer_scales = nn.Parameter(
                torch.ones(len(named), dtype=flat.dtype, device=flat.device)
            )

    @property
    def n_trainable(self) -> int:
        """Trainable scalars: ``d``, plus one per parameter tensor with SAID."""
        return self.d + (len(self.sizes) if self.layer_scales is not None else 0)

    def theta(self) -> torch.Tensor:
        """The full parameter vector ``(D,)`` for the current ``theta_d``."""
        delta: torch.Tensor = self.projection(self.theta_d).to(self.theta0.dtype)  # (D,)
        if self.layer_scales is not None:
            sizes = torch.as_tensor(self.sizes, device=delta.device)
            delta = delta * torch.repeat_interleave(self.layer_scales, sizes)
        return self.theta0 + delta

    def parameter_dict(self) -> dict[str, torch.Tensor]:
        """``theta`` split into the module's named parameter tensors."""
        chunks = torch.split(self.theta(), self.sizes)
        return {
            name: chunk.view(shape)
            for name, chunk, shape in zip(self.names, chunks, self.shapes, strict=True)
        }

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the wrapped module with parameters ``theta0 + P theta_d``."""
        return functional_call(self.module, self.parameter_dict(), args, kwargs)

    def extra_repr(self) -> str:
        return f"D={self.n_params}, d={self.d}, said={self.said}"
