"""DEPICT's training phases (pretraining, head fit, the DEPICT loss) and its target, as a
mixin of :class:`~embedlab.cluster.depict.DEPICTClusterer` (which documents them; it
re-exports :func:`depict_target`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import normalized_mutual_info_score
from torch import nn

from embedlab.cluster._depict_train import EarlyStopping, clean_recon_loss, noisy_recon_loss

__all__ = ["DEPICTPhases", "depict_target"]


def depict_target(probs: torch.Tensor, *, target: str = "square") -> torch.Tensor:
    """The auxiliary target ``Q`` of DEPICT from the clean predictions ``P (n, k)``.

    ``"sqrt"``: the paper's eq. 7, ``q_ik ∝ p_ik / (Σ_i' p_i'k)^{1/2}`` (KL to ``P`` plus
    KL of the cluster frequencies to the uniform prior). ``"square"``: the reference
    code's sharpened form ``q_ik ∝ p_ik² / Σ_i' p_i'k`` (as DEC), the default: it also
    divides by the frequency, and sharpens. Rows sum to 1.
    """
    freq = probs.sum(dim=0, keepdim=True)  # (1, k) soft cluster sizes
    q = probs**2 / freq if target == "square" else probs / freq.sqrt()
    return q / q.sum(dim=1, keepdim=True)


class DEPICTPhases:
    """The batches, the clean forward pass and the three training phases of DEPICT; the
    hyper-parameters and the fitted modules are set by ``DEPICTClusterer.__init__`` / ``_fit``."""

    n_clusters: int
    batch_size: int
    lr: float
    rec_weight: float
    target: str
    tol: float
    pretrain_epochs: int
    init_epochs: int
    epochs: int
    pretrain_patience: int | None
    init_patience: int | None
    target_update: str
    device: str
    net_: nn.Module | None
    head_: nn.Linear | None
    history_: dict[str, list[float]]

    def _batches(self, rows: np.ndarray, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Shuffled full batches of the sample indices ``rows`` (the last partial one dropped,
        as the reference)."""
        order = rows[rng.permutation(len(rows))]
        for start in range(0, len(rows) - self.batch_size + 1, self.batch_size):
            yield order[start : start + self.batch_size]

    @torch.no_grad()
    def _embed_probs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean embeddings ``(n, dim)`` and probabilities ``(n, k)``."""
        assert self.net_ is not None and self.head_ is not None
        self.net_.eval()
        embs = [self.net_(x[i : i + 1000]).embedding for i in range(0, x.shape[0], 1000)]
        emb = torch.cat(embs)
        return emb, F.softmax(self.head_(emb), dim=1)

    def _pretrain(
        self,
        data: torch.Tensor,
        train: np.ndarray,
        val: np.ndarray,
        rng: np.random.Generator,
        tick: Callable[[str], None],
    ) -> None:
        """The autoencoder alone on the training rows; with a validation split, the clean
        reconstruction loss of the held-out rows is watched (early stopping after
        ``pretrain_patience`` epochs without improvement) and the best weights are kept."""
        assert self.net_ is not None
        net = self.net_
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        stopper = EarlyStopping([net], patience=self.pretrain_patience, mode="min")
        for _ in range(self.pretrain_epochs):
            loss_sum = 0.0
            for idx in self._batches(train, rng):
                loss, _ = noisy_recon_loss(net, data[idx])
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                loss_sum += loss.item()
            if len(val) == 0:
                tick(f"pretrain rec {loss_sum:.2f}")
                continue
            val_loss = clean_recon_loss(net, data[val])
            self.history_["pretrain_val"].append(val_loss)
            tick(f"pretrain val rec {val_loss:.5f}")
            if stopper.step(val_loss):
                break
        stopper.restore()

    def _fit_head(
        self,
        data: torch.Tensor,
        start: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        rng: np.random.Generator,
        tick: Callable[[str], None],
    ) -> None:
        """Cross-entropy to the start labels (plus reconstruction) on the training rows, up
        to ``init_epochs``; with a validation split, the held-out rows' NMI between the
        predicted and the start labels is watched (patience ``init_patience``) and the best
        weights are kept (starting from the weights before this phase)."""
        assert self.net_ is not None and self.head_ is not None
        params = [*self.net_.parameters(), *self.head_.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr)
        hard = F.one_hot(torch.from_numpy(start).to(self.device), self.n_clusters).float()
        stopper = EarlyStopping([self.net_, self.head_], patience=self.init_patience, mode="max")

        def val_nmi() -> float:
            pred = self._embed_probs(data[val])[1].argmax(1).cpu().numpy()
            score = float(normalized_mutual_info_score(start[val], pred))
            self.history_["init_val_nmi"].append(score)
            return score

        if len(val):
            stopper.step(val_nmi())
        for _ in range(self.init_epochs):
            self._epoch(data, train, rng, opt, hard.__getitem__)
            if len(val) == 0:
                tick("head init")
                continue
            score = val_nmi()
            tick(f"head init val nmi {score:.4f}")
            if stopper.step(score):
                break
        stopper.restore()

    def _depict_phase(
        self,
        data: torch.Tensor,
        labels: np.ndarray,
        rng: np.random.Generator,
        tick: Callable[[str], None],
    ) -> np.ndarray:
        """Up to ``epochs`` of the DEPICT loss on every sample (a fresh Adam, as the
        reference); stops when under ``tol`` of the labels change in an epoch."""
        assert self.net_ is not None and self.head_ is not None
        params = [*self.net_.parameters(), *self.head_.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr)
        rows = np.arange(data.shape[0])
        probs = self._embed_probs(data)[1]
        for _ in range(self.epochs):
            q = depict_target(probs, target=self.target)
            if self.target_update == "batch":
                # the reference: each batch's clean P right after its update feeds the next
                # epoch's target (rows of a dropped partial batch keep their old P)
                self._epoch(data, rows, rng, opt, q.__getitem__, keep=probs)
            else:
                self._epoch(data, rows, rng, opt, q.__getitem__)
                probs = self._embed_probs(data)[1]
            new = probs.argmax(1).cpu().numpy()
            changed = float((new != labels).mean())
            labels = new
            self.history_["changed"].append(changed)
            tick(f"{changed:.2%} labels changed")
            if changed < self.tol:
                break
        return self._embed_probs(data)[1].argmax(1).cpu().numpy()

    def _epoch(
        self,
        data: torch.Tensor,
        rows: np.ndarray,
        rng: np.random.Generator,
        opt: torch.optim.Optimizer,
        targets_of: Callable[[np.ndarray], torch.Tensor],
        keep: torch.Tensor | None = None,
    ) -> None:
        """One pass of cross-entropy from ``targets_of(idx)`` to the noisy head plus
        ``rec_weight`` x reconstruction; ``keep (n, k)`` receives each batch's clean ``P``
        after its update."""
        assert self.net_ is not None and self.head_ is not None
        for idx in self._batches(rows, rng):
            rec, noisy = noisy_recon_loss(self.net_, data[idx])
            log_p = F.log_softmax(self.head_(noisy.embedding), dim=1)
            clus = -(targets_of(idx) * log_p).sum(1).mean()
            loss = clus + self.rec_weight * rec
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            if keep is not None:
                keep[idx] = self._embed_probs(data[idx])[1]
