"""MLC: features and a doubly stochastic membership optimised jointly by rate reduction."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embedlab._training_common import forked_rng, progress_bar
from embedlab._validation import check_int, check_positive_float
from embedlab.cluster._base import Clusterer, check_batch_size
from embedlab.cluster._registry import register_clusterer
from embedlab.cluster.kmeans import kmeans_fit
from embedlab.cluster.spectral import spectral_labels
from embedlab.losses.mcr2 import coding_rate, membership_coding_rate

__all__ = ["MLCClusterer", "doubly_stochastic"]

#: above this many samples the final labels come from k-means on the cluster head
#: instead of spectral clustering of the dense ``(n, n)`` membership
MAX_SPECTRAL = 20_000


def doubly_stochastic(logits: torch.Tensor, *, iters: int = 30) -> torch.Tensor:
    """Symmetric Sinkhorn projection: ``Γ = Diag(e^u) exp(logits) Diag(e^u)`` with every row
    and column summing to 1, for symmetric ``logits (n, n)``; differentiable (unrolled).

    The damped fixed point ``u <- (u - logsumexp_j(logits_ij + u_j)) / 2`` in the log
    domain (no overflow for small temperatures).
    """
    u = torch.zeros(logits.shape[0], dtype=logits.dtype, device=logits.device)
    for _ in range(iters):
        u = 0.5 * (u - torch.logsumexp(logits + u[None, :], dim=1))
    out: torch.Tensor = torch.exp(logits + u[:, None] + u[None, :])
    return out


class _MLCNet(nn.Module):
    """MLP backbone with two unit-norm heads: features ``z`` and cluster codes ``c``."""

    def __init__(self, in_dim: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
        )
        self.feature = nn.Linear(hidden, dim)
        self.cluster = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return F.normalize(self.feature(h), dim=1), F.normalize(self.cluster(h), dim=1)


@register_clusterer("mlc")
class MLCClusterer(Clusterer):
    """Manifold Linearizing and Clustering: maximise the coding rate reduction of the features
    ``Z`` under a doubly stochastic membership ``Γ``, learned jointly.

    An MLP maps each (flattened, standardised) sample to unit-norm features ``z`` and
    cluster codes ``c`` (two heads). In a batch, ``Γ = Sinkhorn(C Cᵀ / gamma)`` is doubly
    stochastic (rows and columns sum to 1) and the loss is

    ``−R(Z) + R_c(Z, Γ) − aug_weight · mean cos(z, z')``,

    ``R_c(Z, Γ) = Σ_j 1/(2n) log det(I + d/ε² Zᵀ Diag(Γ_j) Z)``: each sample's
    neighbourhood under ``Γ`` must be coded cheaply (lie near a low-dimensional
    subspace) while the whole spreads out; ``z'`` is a second view (Gaussian noise and
    dropout of the input). Initialisation: ``pretrain_epochs`` of the self-supervised part
    (``−R(Z)`` and the view term), then the cluster head is copied from the feature head
    (``Γ`` starts as the projection of ``Z Zᵀ``). Labels: spectral clustering of the full
    ``Γ`` (k-means on ``c`` above 20,000 samples). No ``predict``.

    Ding, Tong, Chan, Dai, Ma, Haeffele, "Unsupervised Manifold Linearizing and
    Clustering", ICCV 2023; rate reduction: Yu et al., NeurIPS 2020. Our reading: the
    paper's augmentations are image crops/colour; here noise and dropout, so any vectors.

    Args:
        n_clusters: ``>= 2``.
        seed: seeds initialisation, views, shuffling and the final clustering.
        dim: feature dimension d.
        hidden: backbone width.
        eps: ε of the coding rates.
        gamma: Sinkhorn temperature (entropy weight), ``> 0``.
        pretrain_epochs, epochs: self-supervised initialisation and MLC epochs.
        batch_size: ``<=`` the number of samples.
        lr: Adam learning rate.
        aug_weight: weight of the view-agreement term.
        noise: standard deviation of the view noise (standardised units).
        sinkhorn_iters: Sinkhorn iterations.
        device, progress: torch device, progress bar.

    Shapes:
        ``fit_predict(x (n, D) or (n, c, h, w)) -> (n,)``; ``transform(x) -> (n, dim)``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = np.r_[rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 6]
        >>> m = MLCClusterer(n_clusters=2, pretrain_epochs=2, epochs=2, batch_size=30)
        >>> labels = m.fit_predict(x)
        >>> len(set(labels[:30])), len(set(labels))
        (1, 2)
    """

    input_ndims = (2, 4)

    def __init__(
        self,
        *,
        n_clusters: int = 8,
        seed: int = 0,
        dim: int = 32,
        hidden: int = 512,
        eps: float = 0.5,
        gamma: float = 0.1,
        pretrain_epochs: int = 10,
        epochs: int = 10,
        batch_size: int = 500,
        lr: float = 1e-3,
        aug_weight: float = 1.0,
        noise: float = 0.3,
        sinkhorn_iters: int = 30,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        super().__init__(n_clusters=n_clusters, seed=seed)
        self.dim = check_int("dim", dim, min_value=1)
        self.hidden = check_int("hidden", hidden, min_value=1)
        self.eps = check_positive_float("eps", eps)
        self.gamma = check_positive_float("gamma", gamma)
        self.pretrain_epochs = check_int("pretrain_epochs", pretrain_epochs, min_value=0)
        self.epochs = check_int("epochs", epochs, min_value=0)
        self.batch_size = check_int("batch_size", batch_size, min_value=2)
        self.lr = check_positive_float("lr", lr)
        self.aug_weight = check_positive_float("aug_weight", aug_weight, strict=False)
        self.noise = check_positive_float("noise", noise, strict=False)
        self.sinkhorn_iters = check_int("sinkhorn_iters", sinkhorn_iters, min_value=1)
        self.device = str(device)
        self.progress = bool(progress)
        self.net_: _MLCNet | None = None
        self._scale: tuple[float, np.ndarray] = (1.0, np.zeros(1, np.float32))

    def _batches(self, n: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        order = rng.permutation(n)
        for start in range(0, n - self.batch_size + 1, self.batch_size):
            yield order[start : start + self.batch_size]

    def _view(self, xb: torch.Tensor) -> torch.Tensor:
        keep = (torch.rand_like(xb) > 0.1).to(xb.dtype)
        return xb * keep + self.noise * torch.randn_like(xb)

    def _loss(self, xb: torch.Tensor, cluster: bool) -> torch.Tensor:
        assert self.net_ is not None
        z1, c1 = self.net_(self._view(xb))
        z2, _ = self.net_(self._view(xb))
        loss = -coding_rate(z1, self.eps) - self.aug_weight * (z1 * z2).sum(1).mean()
        if cluster:
            gam = doubly_stochastic(c1 @ c1.T / self.gamma, iters=self.sinkhorn_iters)
            loss = loss + membership_coding_rate(z1, gam.T, self.eps)  # rows: columns Γ_j
        out: torch.Tensor = loss
        return out

    def _fit(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        check_batch_size(self.batch_size, n)
        flat = x.reshape(n, -1)
        mean = flat.mean(0)
        self._scale = (float(flat.std()) or 1.0, mean)
        data = torch.from_numpy((flat - mean) / self._scale[0]).float().to(self.device)
        rng = np.random.default_rng(self.seed)
        with forked_rng(torch.device(self.device)), progress_bar(self.progress) as bar:
            torch.manual_seed(self.seed)
            task = bar.add_task("mlc", total=self.pretrain_epochs + self.epochs, info="")
            self.net_ = _MLCNet(data.shape[1], self.hidden, self.dim).to(self.device)
            opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
            for epoch in range(self.pretrain_epochs + self.epochs):
                cluster = epoch >= self.pretrain_epochs
                if cluster and epoch == self.pretrain_epochs:  # one-shot membership init
                    self.net_.cluster.load_state_dict(self.net_.feature.state_dict())
                self.net_.train()
                total = 0.0
                for idx in self._batches(n, rng):
                    loss = self._loss(data[idx], cluster)
                    opt.zero_grad()
                    loss.backward()  # type: ignore[no-untyped-call]
                    opt.step()
                    total += loss.item()
                bar.update(task, advance=1, info=f"{'mlc' if cluster else 'init'} {total:.2f}")
            return self._labels(data)

    @torch.no_grad()
    def _codes(self, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.net_ is not None
        self.net_.eval()
        parts = [self.net_(data[i : i + 2048]) for i in range(0, data.shape[0], 2048)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _labels(self, data: torch.Tensor) -> np.ndarray:
        _, codes = self._codes(data)
        if data.shape[0] > MAX_SPECTRAL:
            return kmeans_fit(codes.cpu().numpy(), self.n_clusters, seed=self.seed)[0]
        with torch.no_grad():
            gam = doubly_stochastic(codes @ codes.T / self.gamma, iters=self.sinkhorn_iters)
        return spectral_labels(gam.cpu().numpy(), self.n_clusters, seed=self.seed)

    def transform(self, x: object) -> np.ndarray:
        """Unit-norm features ``(n, dim)`` of samples (after :meth:`fit`)."""
        from embedlab.cluster._base import as_samples

        if self.net_ is None:
            raise RuntimeError("MLCClusterer is not fitted: call fit(X) first")
        flat = as_samples("X", x, ndim=self.input_ndims)
        flat = flat.reshape(flat.shape[0], -1)
        data = torch.from_numpy((flat - self._scale[1]) / self._scale[0]).float()
        return self._codes(data.to(self.device))[0].cpu().numpy()
