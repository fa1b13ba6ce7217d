"""The GCD training loop (supervised + self-supervised contrastive) and the pool clustering."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from embedlab.losses import MetricLoss, NoPairsWarning, make_loss
from embedlab.training.batches import augment_batch

if TYPE_CHECKING:
    from embedlab.bench.gcd import GCDSplit

__all__ = ["cluster_pool", "train_gcd_encoder"]

#: augmentation of the two views: shift (pixels) and noise for images; for vectors, noise of
#: this share of the features' standard deviation
IMAGE_SHIFT, IMAGE_NOISE, VECTOR_NOISE = 2, 0.1, 0.1


def train_gcd_encoder(
    encoder: nn.Module,
    spec: str,
    split: GCDSplit,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    sup_weight: float,
    seed: int,
    progress: bool = False,
) -> tuple[MetricLoss, dict[str, float]]:
    """Train ``encoder`` in place on every sample of ``split``; returns the loss and timing.

    Each batch: two augmented views of each sample; ``L_self`` is the loss with the sample
    index as label (positives: the other view, i.e. SimCLR), ``L_sup`` the loss over the
    labelled samples' views with their classes; ``L = (1 - w) L_self + w L_sup``. A loss with
    a ``ramp`` attribute (:class:`~embedlab.losses.HypCDLoss`) gets ``epoch / (epochs - 1)``
    at each epoch: HypCD's linear warm-up of the hyperbolic-distance weight.
    """
    loss = make_loss(spec)
    if loss.input_kind != "labels" or loss.float_labels:
        raise ValueError(f"GCD methods need a loss of (embeddings, class labels), got {spec!r}")
    x_all = torch.from_numpy(split.data.x)
    y_all = torch.from_numpy(split.data.y)
    labelled = torch.from_numpy(split.labelled)
    image = x_all.dim() == 4
    noise = IMAGE_NOISE if image else VECTOR_NOISE * float(x_all.std())
    shift = IMAGE_SHIFT if image else 0
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    params = list(encoder.parameters()) + list(loss.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    encoder.train()
    n, steps = x_all.shape[0], 0
    start = time.perf_counter()
    for epoch in range(epochs):
        if hasattr(loss, "ramp"):
            setattr(loss, "ramp", epoch / (epochs - 1) if epochs > 1 else 1.0)  # noqa: B010
        order = torch.randperm(n, generator=gen)
        total, epoch_steps = 0.0, 0
        for lo in range(0, n - 3, batch_size):
            idx = order[lo : lo + batch_size]
            if idx.numel() < 4:
                continue
            xb = x_all[idx]
            views = torch.cat(
                [augment_batch(xb, gen, max_shift=shift, noise=noise) for _ in range(2)]
            )
            z = encoder(views)  # (2b, dim): view 1 of every sample, then view 2
            b = idx.numel()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NoPairsWarning)
                self_loss = loss(z, torch.arange(b).repeat(2))
                lab = labelled[idx].repeat(2)
                sup = loss(z[lab], y_all[idx].repeat(2)[lab]) if int(lab.sum()) >= 2 else None
            step_loss = (1 - sup_weight) * self_loss
            if sup is not None:
                step_loss = step_loss + sup_weight * sup
            if not torch.isfinite(step_loss):
                raise RuntimeError(f"{spec}: non-finite loss at epoch {epoch}, step {steps}")
            opt.zero_grad()
            step_loss.backward()
            opt.step()
            steps += 1
            epoch_steps += 1
            total += float(step_loss.detach())
        if progress:
            mean = total / max(epoch_steps, 1)
            print(f"  {spec} epoch {epoch + 1}/{epochs}: mean loss {mean:.4f}")
    seconds = time.perf_counter() - start
    return loss, {"train_s": seconds, "steps": float(steps)}


def cluster_pool(
    emb: np.ndarray, split: GCDSplit, *, seed: int, assign: str = "kmeans"
) -> dict[str, float]:
    """Cluster the L2-normalised embeddings ``emb (n, dim)`` of *every* sample of ``split``
    into as many clusters as classes; the GCD accuracies and NMI on the unlabelled pool.

    ``assign="kmeans"``: scikit-learn k-means (4 starts) on the pool alone.
    ``assign="ss-kmeans"``: semi-supervised k-means (Vaze et al.) on all samples, the
    labelled ones held in their class's cluster (known class ``i``-th smallest -> cluster
    ``i``), 10 starts; only the pool is scored, as in the reference.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    from embedlab.bench.gcd import gcd_accuracy
    from embedlab.cluster import semi_supervised_kmeans

    feats = np.asarray(emb, dtype=np.float64).reshape(emb.shape[0], -1)
    feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    pool = split.unlabelled
    if assign == "ss-kmeans":
        partial = np.full(feats.shape[0], -1, dtype=np.int64)
        rank = {c: i for i, c in enumerate(split.known)}
        lab = np.flatnonzero(split.labelled)
        partial[lab] = [rank[int(c)] for c in split.data.y[lab]]
        labels, _, _ = semi_supervised_kmeans(feats, partial, split.n_classes, seed=seed)
        pred = labels[pool]
    else:
        km = KMeans(n_clusters=split.n_classes, n_init=4, random_state=seed)
        pred = km.fit_predict(feats[pool])
    true = split.data.y[pool]
    out = gcd_accuracy(true, pred, split.old_mask())
    out["nmi"] = float(normalized_mutual_info_score(true, pred))
    return out
