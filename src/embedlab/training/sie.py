"""SIE: self-supervised split invariant-equivariant learning (Garrido et al.).

The embedding of an image is split into an invariant part (its first ``dim_inv`` coordinates)
and an equivariant part (the last ``dim_eq``). For two views related by a known
transformation (here a rotation by ``angle2 - angle1``):

- the invariant parts of the two views are pulled together (VICReg invariance term);
- a hypernetwork predictor turns the transformation parameter into the weights of a
  linear map, which maps the equivariant part of view 1 to a prediction of that of view 2
  (the equivariance term is the MSE of that prediction);
- VICReg's variance and covariance regularisers act on each view's whole ``[inv, eq]``
  vector, so neither part collapses and the parts do not repeat each other's information.

``dim_eq = 0`` is the invariant-only baseline (plain VICReg on the whole embedding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from embedlab._validation import check_embeddings, check_int, check_positive_float
from embedlab.data.rotated_views import RotatedViews
from embedlab.training.encoders import ConvEncoder

__all__ = ["HyperPredictor", "SIEResult", "fit_sie", "sie_embed", "sie_loss", "vicreg_regularizers"]


class HyperPredictor(nn.Module):
    """A hypernetwork: the angle ``a`` -> a ``(dim, dim)`` matrix ``W(a)``; predicts ``W(a) z``.

    The angle enters as ``(cos a, sin a)``, so the predictor is periodic in it. The matrix
    starts near the identity (the generated part is initialised small).

    Args:
        dim: size of the equivariant part.
        hidden: units of the hypernetwork's hidden layer.
        seed: weight initialisation.

    Example:
        >>> p = HyperPredictor(4)
        >>> p(torch.zeros(3, 4), torch.zeros(3)).shape
        torch.Size([3, 4])
    """

    def __init__(self, dim: int, *, hidden: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, min_value=1)
        h = check_int("hidden", hidden, min_value=1)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(check_int("seed", seed, min_value=0))
        out = nn.Linear(h, self.dim * self.dim)
        self.net = nn.Sequential(nn.Linear(2, h), nn.ReLU(), out)
        torch.random.set_rng_state(gen_state)
        with torch.no_grad():
            out.weight.mul_(0.1)
            out.bias.zero_()

    def matrices(self, angle: torch.Tensor) -> torch.Tensor:
        """``(n,)`` angles -> ``(n, dim, dim)`` predictor weights (identity + generated part)."""
        a = check_embeddings("angle", angle, ndim=1)
        feats = torch.stack([torch.cos(a), torch.sin(a)], dim=1)
        w: torch.Tensor = self.net(feats).view(-1, self.dim, self.dim)
        return w + torch.eye(self.dim, dtype=w.dtype)

    def forward(self, z: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """``(n, dim)`` equivariant parts of view 1, ``(n,)`` angles -> ``(n, dim)`` predictions."""
        check_embeddings("z", z)
        if z.shape[1] != self.dim:
            raise ValueError(f"z must have {self.dim} columns, got shape {tuple(z.shape)}")
        if angle.dim() != 1 or angle.shape[0] != z.shape[0]:
            raise ValueError(f"angle must have shape ({z.shape[0]},), got {tuple(angle.shape)}")
        return torch.bmm(self.matrices(angle), z.unsqueeze(2)).squeeze(2)


def vicreg_regularizers(z: torch.Tensor, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg's variance (hinge of each dimension's std at 1) and covariance (off-diagonal²/d)."""
    check_embeddings("z", z)
    if z.shape[0] < 2:
        raise ValueError(f"z needs at least 2 rows for a variance, got {z.shape[0]}")
    zc = z - z.mean(dim=0)
    std = torch.sqrt(zc.var(dim=0) + eps)
    var = torch.relu(1.0 - std).mean()
    cov = (zc.T @ zc) / (z.shape[0] - 1)
    off = cov - torch.diag(torch.diag(cov))
    return var, off.pow(2).sum() / z.shape[1]


def sie_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    angle: torch.Tensor,
    predictor: HyperPredictor | None,
    *,
    dim_inv: int,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The SIE loss of two views' embeddings; returns the total and its parts.

    Args:
        z1, z2: ``(n, dim_inv + dim_eq)`` embeddings of view 1 and view 2.
        angle: ``(n,)`` transformation from view 1 to view 2 (radians).
        predictor: the hypernetwork on the equivariant part; ``None`` iff ``dim_eq == 0``.
        dim_inv: size of the invariant part (the first columns), ``>= 1``.
        sim_weight, var_weight, cov_weight: VICReg weights (25, 25, 1 in the paper).
    """
    check_embeddings("z1", z1)
    check_embeddings("z2", z2)
    if z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    d_inv = check_int("dim_inv", dim_inv, min_value=1)
    if d_inv > z1.shape[1]:
        raise ValueError(f"dim_inv must be <= the embedding size {z1.shape[1]}, got {dim_inv}")
    d_eq = z1.shape[1] - d_inv
    if (predictor is None) != (d_eq == 0):
        raise ValueError(
            f"predictor must be given iff the equivariant part is non-empty (dim_eq={d_eq})"
        )
    ws = check_positive_float("sim_weight", sim_weight, strict=False)
    wv = check_positive_float("var_weight", var_weight, strict=False)
    wc = check_positive_float("cov_weight", cov_weight, strict=False)
    i1, i2 = z1[:, :d_inv], z2[:, :d_inv]
    inv = (i1 - i2).pow(2).sum(dim=1).mean() / d_inv
    eq = torch.zeros((), dtype=z1.dtype)
    if predictor is not None:
        e1, e2 = z1[:, d_inv:], z2[:, d_inv:]
        eq = (predictor(e1, angle) - e2).pow(2).sum(dim=1).mean() / d_eq
    # Variance and covariance on the whole [inv, eq] vectors, as in the reference code: the
    # cross-covariance between the parts is penalised too, so the equivariant part cannot
    # simply repeat the invariant information (it must carry the transformation).
    (v1, c1), (v2, c2) = vicreg_regularizers(z1), vicreg_regularizers(z2)
    var, cov = (v1 + v2) / 2, c1 + c2
    total = ws * (inv + eq) + wv * var + wc * cov
    parts = {
        k: float(v.detach()) for k, v in (("inv", inv), ("eq", eq), ("var", var), ("cov", cov))
    }
    return total, parts


@dataclass
class SIEResult:
    """A trained SIE model: encoder, predictor (``None``: invariant-only) and loss history."""

    encoder: nn.Module
    predictor: HyperPredictor | None
    dim_inv: int
    dim_eq: int
    history: list[dict[str, float]] = field(default_factory=list)


def fit_sie(
    views: RotatedViews,
    *,
    dim_inv: int = 32,
    dim_eq: int = 8,
    epochs: int = 5,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    encoder: nn.Module | None = None,
) -> SIEResult:
    """Train an encoder with the SIE loss on two rotated views per image (Adam).

    Args:
        views: from :func:`embedlab.data.rotated_views.rotated_views`.
        dim_inv, dim_eq: sizes of the invariant and equivariant parts (``dim_eq = 0``: the
            invariant-only VICReg baseline).
        epochs, batch_size, lr, seed: optimisation (``seed`` fixes init and batch order).
        encoder: images -> ``(n, dim_inv + dim_eq)``; defaults to a :class:`ConvEncoder`.

    Returns:
        the trained :class:`SIEResult`; ``history`` has one entry (mean loss parts) per epoch.
    """
    if not isinstance(views, RotatedViews):
        raise TypeError(f"views must be a RotatedViews, got {type(views).__name__}")
    d_inv = check_int("dim_inv", dim_inv, min_value=1)
    d_eq = check_int("dim_eq", dim_eq, min_value=0)
    n_epochs = check_int("epochs", epochs, min_value=1)
    bs = check_int("batch_size", batch_size, min_value=2)
    rate = check_positive_float("lr", lr)
    s = check_int("seed", seed, min_value=0)
    n = views.view1.shape[0]
    if n < 2:
        raise ValueError(f"views must hold at least 2 images, got {n}")
    if encoder is None:
        c, h, _ = views.view1.shape[1:]
        encoder = ConvEncoder(d_inv + d_eq, in_channels=c, image_size=h, seed=s)
    predictor = HyperPredictor(d_eq, seed=s) if d_eq else None
    params = list(encoder.parameters()) + (list(predictor.parameters()) if predictor else [])
    opt = torch.optim.Adam(params, lr=rate)
    rel = views.relative_angle
    gen = torch.Generator().manual_seed(s)
    history: list[dict[str, float]] = []
    encoder.train()
    for _ in range(n_epochs):
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        steps = 0
        for start in range(0, n - 1, bs):
            idx = order[start : start + bs]
            if idx.numel() < 2:
                continue
            z1, z2 = encoder(views.view1[idx]), encoder(views.view2[idx])
            if z1.shape[1] != d_inv + d_eq:
                raise ValueError(
                    f"encoder must output dim_inv + dim_eq = {d_inv + d_eq} columns, "
                    f"got {z1.shape[1]}"
                )
            loss, parts = sie_loss(z1, z2, rel[idx], predictor, dim_inv=d_inv)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            parts["total"] = float(loss.detach())
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        history.append({k: v / steps for k, v in sums.items()})
    encoder.eval()
    return SIEResult(encoder, predictor, d_inv, d_eq, history)


def sie_embed(
    result: SIEResult, images: torch.Tensor, *, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Embed images with a trained model: ``(invariant part, equivariant part)``, float32."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"images must be a (n, C, H, W) tensor, got {getattr(images, 'shape', images)!r}"
        )
    bs = check_int("batch_size", batch_size, min_value=1)
    with torch.no_grad():
        z = torch.cat([result.encoder(images[i : i + bs]) for i in range(0, images.shape[0], bs)])
    z_np = z.numpy().astype(np.float32)
    return z_np[:, : result.dim_inv], z_np[:, result.dim_inv :]
