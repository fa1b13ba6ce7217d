"""Any embedlab loss as a sentence-transformers loss.

``SentenceTransformerTrainer`` calls its loss as ``loss(sentence_features, labels)``:
one tokenised batch per dataset column and the ``label`` column (or ``None``).
:class:`SentenceTransformerLoss` embeds each column with the model and hands the
embeddings to the embedlab loss in the form its ``input_kind`` wants:

- ``"labels"`` losses (triplet, supcon, contrastive, ...):
  - one text column and a label column: ``loss(embeddings, labels)``;
  - columns ``(anchor, positive, negative...)`` without labels: row ``i``'s anchor and
    positive get label ``i``, every negative its own label, and all rows are
    concatenated (the pytorch-metric-learning reading of a pair dataset);
- ``"views"`` losses (infonce, mv_infonce, ...): the columns are views of one item,
  stacked to ``(batch, n_columns, dim)``; a label column is passed on when present;
- ``"pairs"`` losses: exactly two columns, ``loss(a, b)``.

Example:
    >>> from sentence_transformers import SentenceTransformer  # doctest: +SKIP
    >>> from embedlab.bridges import SentenceTransformerLoss
    >>> model = SentenceTransformer("path/to/model")  # doctest: +SKIP
    >>> loss = SentenceTransformerLoss(model, "supcon(temperature=0.1)")  # doctest: +SKIP
    >>> # SentenceTransformerTrainer(model=model, train_dataset=ds, loss=loss).train()
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from embedlab.losses import MetricLoss, make_loss

__all__ = ["SentenceTransformerLoss"]


class SentenceTransformerLoss(nn.Module):
    """Wrap an embedlab loss so that ``SentenceTransformerTrainer`` can train with it.

    Args:
        model: the ``SentenceTransformer`` being trained (the trainer swaps in its
            wrapped copy through the ``model`` attribute, as for its own losses).
        loss: a :class:`~embedlab.losses.MetricLoss` or a spec for
            :func:`~embedlab.losses.make_loss` (e.g. ``"triplet(margin=0.1)"``).
        **make_kwargs: ``dim`` / ``n_classes`` and other arguments for ``make_loss``
            (``dim`` defaults to the model's embedding dimension).
    """

    def __init__(self, model: nn.Module, loss: MetricLoss | str, **make_kwargs: Any) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model must be a SentenceTransformer (nn.Module), got {type(model).__name__}"
            )
        self.model = model
        if isinstance(loss, str):
            if "dim" not in make_kwargs:
                make_kwargs["dim"] = _embedding_dim(model)
            loss = make_loss(loss, **make_kwargs)
        elif make_kwargs:
            raise TypeError(
                f"make_kwargs are for a loss spec; loss is already built ({sorted(make_kwargs)})"
            )
        if not isinstance(loss, MetricLoss):
            raise TypeError(
                f"loss must be an embedlab MetricLoss or a spec str, got {type(loss).__name__}"
            )
        self.loss = loss

    def forward(
        self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor | None
    ) -> torch.Tensor:
        """Embed every column, then compute the embedlab loss (see the module docstring)."""
        columns = [self.model(features)["sentence_embedding"] for features in sentence_features]
        return self.compute_loss_from_embeddings(columns, labels)

    def compute_loss_from_embeddings(
        self, columns: list[torch.Tensor], labels: torch.Tensor | None
    ) -> torch.Tensor:
        """The loss of already-embedded columns, each ``(batch, dim)``."""
        if not columns:
            raise ValueError("sentence_features must hold at least one text column, got none")
        kind = self.loss.input_kind
        if kind == "pairs":
            if len(columns) != 2:
                raise ValueError(
                    f"loss {self.loss.name!r} takes pairs: the dataset needs exactly 2 text "
                    f"columns, got {len(columns)}"
                )
            out: torch.Tensor = self.loss(columns[0], columns[1])
            return out
        if kind == "views":
            if len(columns) < 2:
                raise ValueError(
                    f"loss {self.loss.name!r} takes views: the dataset needs >= 2 text columns "
                    f"(views of one item), got {len(columns)}"
                )
            views = torch.stack(columns, dim=1)
            out = self.loss(views) if labels is None else self.loss(views, labels)
            return out
        if len(columns) == 1:
            if labels is None:
                raise ValueError(
                    f"loss {self.loss.name!r} needs class labels: a dataset with one text "
                    "column needs a 'label' column"
                )
            out = self.loss(columns[0], labels)
            return out
        if labels is not None:
            raise ValueError(
                f"loss {self.loss.name!r}: a dataset of {len(columns)} text columns is read "
                "as (anchor, positive, negative...) rows and takes no 'label' column; drop it "
                "or use one text column with labels"
            )
        out = self.loss(*_pair_rows(columns))
        return out

    def get_config_dict(self) -> dict[str, Any]:
        """What sentence-transformers writes into the model card."""
        return {"loss": repr(self.loss)}


def _pair_rows(columns: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate ``(anchor, positive, negative...)`` columns with pair labels."""
    batch = columns[0].shape[0]
    rows = torch.arange(batch, device=columns[0].device)
    labels = [rows, rows]
    for j in range(2, len(columns)):
        labels.append(rows + batch * (j - 1))
    return torch.cat(columns, dim=0), torch.cat(labels)


def _embedding_dim(model: nn.Module) -> int:
    for attr in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        get = getattr(model, attr, None)
        if get is not None:
            dim = get()
            if dim is not None:
                return int(dim)
    raise ValueError("model does not report its embedding dimension; pass dim= explicitly")
