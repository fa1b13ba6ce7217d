"""SimCLR on two given views per image: InfoNCE (NT-Xent) between the views' embeddings.

The contrastive, invariant-only counterpart of SIE for view-pair data such as
:func:`~embedlab.data.rotated_views.rotated_views` (Chen et al., "A Simple Framework for
Contrastive Learning of Visual Representations", ICML 2020): each image's two views are a
positive pair, every other view in the batch a negative. No projection head: the loss acts
on the embedding itself, as SIE's does, so both are evaluated on the same vectors.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab._validation import check_int, check_positive_float
from embedlab.data.rotated_views import RotatedViews
from embedlab.losses.infonce import InfoNCELoss
from embedlab.training.encoders import ConvEncoder
from embedlab.training.sie import SIEResult

__all__ = ["fit_simclr"]


def fit_simclr(
    views: RotatedViews,
    *,
    dim: int = 40,
    epochs: int = 5,
    batch_size: int = 256,
    lr: float = 1e-3,
    temperature: float = 0.1,
    seed: int = 0,
    encoder: nn.Module | None = None,
) -> SIEResult:
    """Train an encoder with InfoNCE between the two views of each image (Adam).

    Args:
        views: from :func:`embedlab.data.rotated_views.rotated_views` (the angles are unused).
        dim: embedding size.
        epochs, batch_size, lr, seed: optimisation (``seed`` fixes init and batch order).
        temperature: InfoNCE temperature, ``> 0``.
        encoder: images -> ``(n, dim)``; defaults to a :class:`ConvEncoder`.

    Returns:
        an :class:`~embedlab.training.sie.SIEResult` with the whole embedding as the invariant
        part (``dim_eq = 0``, no predictor), so :func:`~embedlab.training.sie.sie_embed` reads
        it; ``history`` has the mean loss of each epoch.
    """
    if not isinstance(views, RotatedViews):
        raise TypeError(f"views must be a RotatedViews, got {type(views).__name__}")
    d = check_int("dim", dim, min_value=1)
    n_epochs = check_int("epochs", epochs, min_value=1)
    bs = check_int("batch_size", batch_size, min_value=2)
    rate = check_positive_float("lr", lr)
    s = check_int("seed", seed, min_value=0)
    loss_fn = InfoNCELoss(temperature=temperature)
    n = views.view1.shape[0]
    if n < 2:
        raise ValueError(f"views must hold at least 2 images, got {n}")
    if encoder is None:
        c, h, _ = views.view1.shape[1:]
        encoder = ConvEncoder(d, in_channels=c, image_size=h, seed=s)
    opt = torch.optim.Adam(encoder.parameters(), lr=rate)
    gen = torch.Generator().manual_seed(s)
    history: list[dict[str, float]] = []
    encoder.train()
    for _ in range(n_epochs):
        order = torch.randperm(n, generator=gen)
        total, steps = 0.0, 0
        for start in range(0, n - 1, bs):
            idx = order[start : start + bs]
            if idx.numel() < 2:
                continue
            z1, z2 = encoder(views.view1[idx]), encoder(views.view2[idx])
            if z1.shape[1] != d:
                raise ValueError(f"encoder must output dim = {d} columns, got {z1.shape[1]}")
            loss = loss_fn(z1, z2)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach())
            steps += 1
        history.append({"total": total / steps})
    encoder.eval()
    return SIEResult(encoder, None, d, 0, history)
