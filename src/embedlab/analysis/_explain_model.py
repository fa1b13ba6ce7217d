"""The black box of :func:`~embedlab.analysis.explain_embedding`: a small MLP classifier.

Inputs are standardised with the training mean and standard deviation; the second hidden
layer is the learned embedding the classes are read from (as in the paper, where a deep
model learns embeddings on which the classification is performed). Only the pieces the
explanation needs: fit, class probabilities, and input gradients (for probing).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["MLPBlackBox"]


class MLPBlackBox:
    """An MLP ``d -> hidden -> embed_dim -> n_classes`` trained with cross-entropy (Adam).

    Args:
        hidden: width of the first hidden layer.
        embed_dim: width of the embedding layer.
        epochs: passes over the training rows (more on small data: at least ``min_steps``
            Adam steps are taken).
        min_steps: fewest optimisation steps.
        l2: weight of the squared L2 norm of the weights in the loss (keeps the box from
            memorising small training sets; scikit-learn's ``MLPClassifier`` does the same).
        lr: Adam learning rate.
        seed: seeds the initialisation and the batch order.
    """

    def __init__(
        self,
        *,
        hidden: int = 128,
        embed_dim: int = 32,
        epochs: int = 30,
        min_steps: int = 1000,
        lr: float = 1e-3,
        l2: float = 1e-2,
        seed: int = 0,
    ) -> None:
        self.l2 = l2
        self.hidden, self.embed_dim, self.lr, self.seed = hidden, embed_dim, lr, seed
        self.epochs, self.min_steps = epochs, min_steps
        self.net: nn.Sequential | None = None
        self.mean = np.zeros(0)
        self.scale = np.ones(0)

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> MLPBlackBox:
        """Train on ``x (n, d)`` and class ids ``y (n,)`` in ``[0, n_classes)``."""
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        big = np.abs(x).max(axis=0)
        big = np.where(big > 0, big, 1.0)
        self.mean = (x / big).mean(axis=0) * big  # no overflow at extreme scales
        std = (x / big).std(axis=0) * big
        self.scale = np.where(std > 1e-12 * big, std, 1.0)
        d = x.shape[1]
        self.net = nn.Sequential(
            nn.Linear(d, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.embed_dim),
            nn.ReLU(),
            nn.Linear(self.embed_dim, n_classes),
        )
        xt = self._tensor(x)
        yt = torch.as_tensor(y, dtype=torch.long)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        weights = [m.weight for m in self.net if isinstance(m, nn.Linear)]
        batch = 128
        self.net.train()
        per_epoch = -(-xt.shape[0] // batch)
        for _ in range(max(self.epochs, -(-self.min_steps // per_epoch))):
            order = torch.randperm(xt.shape[0], generator=gen)
            for start in range(0, xt.shape[0], batch):
                idx = order[start : start + batch]
                loss = nn.functional.cross_entropy(self.net(xt[idx]), yt[idx])
                loss = loss + self.l2 * sum((w * w).sum() for w in weights)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        self.net.eval()
        return self

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((x - self.mean) / self.scale, dtype=torch.float32)

    def _net(self) -> nn.Sequential:
        if self.net is None:
            raise RuntimeError("MLPBlackBox.fit must be called first")
        return self.net

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` of the rows of ``x (n, d)``."""
        net = self._net()
        out = []
        with torch.no_grad():
            for start in range(0, x.shape[0], 4096):
                logits = net(self._tensor(x[start : start + 4096]))
                out.append(torch.softmax(logits, dim=1).double().numpy())
        return np.concatenate(out, axis=0)

    def input_gradients(self, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """``d log p(class_i | x_i) / d x_i`` for each row, in input units ``(n, d)``."""
        net = self._net()
        xt = self._tensor(x).requires_grad_(True)
        logp = torch.log_softmax(net(xt), dim=1)
        picked = logp.gather(1, torch.as_tensor(classes, dtype=torch.long)[:, None]).sum()
        (grad,) = torch.autograd.grad(picked, xt)
        return grad.double().numpy() / self.scale  # chain rule through the standardisation
