"""``bench ctr --tune N``: the same small, seeded search of training settings for every method.

Why: a method compared at the defaults of another is not compared fairly, and an
unregularised full table overfits long-tailed logs (issue 13, part 6). Every (method,
compression, seed) of a tuned grid trains the SAME ``N`` candidate settings, so methods are
compared at equal tuning budget:

- candidate 0 is the untuned setting (the command's flags), so tuning never does worse on
  validation data than not tuning;
- candidates 1 .. N-1 are drawn without replacement from :data:`TUNE_SPACE` with a fixed
  generator (:data:`TUNE_SEED`), independent of the method and of the run's seed.

Selection uses validation data only: each candidate trains with early stopping on the
validation AUC (best epoch restored), and the candidate with the highest validation AUC is
kept (ties: the earlier candidate). Its test AUC and logloss are the run's record; the
record's ``params["tune"]`` lists every candidate's validation AUC and logloss.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab._registry import parse_spec
from embedlab._validation import check_int
from embedlab.bench._record import BenchRecord

__all__ = [
    "TUNE_SEED",
    "TUNE_SPACE",
    "TrainSettings",
    "choose_best",
    "pick_tuned",
    "takes_dropout",
    "tune_candidates",
]

TUNE_SEED = 0

#: the grid the candidates are drawn from; ``schedule`` is ``(epochs, patience)``
TUNE_SPACE: Mapping[str, Sequence[Any]] = {
    "lr": (5e-4, 1e-3, 2e-3),
    "batch_size": (1024, 2048, 4096),
    "embedding_l2": (0.0, 1e-5, 1e-4, 1e-3, 1e-2),
    "weight_decay": (0.0, 1e-6, 1e-5),
    "dropout": (0.0, 0.1, 0.2, 0.3),
    "schedule": ((10, 2), (30, 3), (50, 5)),
}


@dataclass(frozen=True)
class TrainSettings:
    """The training settings one candidate uses (``CTRTrainer`` arguments + model dropout).

    ``dropout`` is passed to the model only when it is not None and the model takes one.
    """

    lr: float = 1e-3
    batch_size: int = 2048
    epochs: int = 10
    patience: int = 2
    embedding_l2: float = 0.0
    weight_decay: float = 0.0
    dropout: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _from_point(point: Mapping[str, Any]) -> TrainSettings:
    epochs, patience = point["schedule"]
    return TrainSettings(
        lr=float(point["lr"]),
        batch_size=int(point["batch_size"]),
        epochs=int(epochs),
        patience=int(patience),
        embedding_l2=float(point["embedding_l2"]),
        weight_decay=float(point["weight_decay"]),
        dropout=float(point["dropout"]),
    )


def tune_candidates(n: int, base: TrainSettings) -> list[TrainSettings]:
    """``n`` candidate settings: ``base`` first, then ``n - 1`` distinct draws from the grid.

    The draws depend only on ``n`` (a generator seeded with :data:`TUNE_SEED`), so every method
    and every seed of a grid trains the same candidates.

    Example:
        >>> c = tune_candidates(3, TrainSettings())
        >>> len(c), c[0] == TrainSettings(), c == tune_candidates(3, TrainSettings())
        (3, True, True)
    """
    n = check_int("tune", n, min_value=1)
    names = list(TUNE_SPACE)
    grid = list(itertools.product(*(TUNE_SPACE[k] for k in names)))
    if n - 1 > len(grid):
        raise ValueError(f"tune must be <= {len(grid) + 1} (the grid's size + 1), got {n}")
    rng = np.random.default_rng(TUNE_SEED)
    picks: list[int] = [int(i) for i in rng.choice(len(grid), size=n - 1, replace=False)]
    out = [base]
    for i in picks:
        cand = _from_point(dict(zip(names, grid[i], strict=True)))
        if cand != base:
            out.append(cand)
    # a draw equal to the base is replaced by the next unused grid point, keeping n candidates
    taken = set(picks)
    extra = (int(j) for j in rng.permutation(len(grid)) if int(j) not in taken)
    while len(out) < n:
        cand = _from_point(dict(zip(names, grid[next(extra)], strict=True)))
        if cand not in out:
            out.append(cand)
    return out


def choose_best(valid_aucs: Sequence[float]) -> int:
    """Index of the highest validation AUC (the earliest on ties; NaN never wins)."""
    if not valid_aucs:
        raise ValueError("valid_aucs must not be empty")
    best, best_auc = 0, -np.inf
    for i, auc in enumerate(valid_aucs):
        if np.isfinite(auc) and auc > best_auc:
            best, best_auc = i, float(auc)
    return best


def takes_dropout(model_spec: str) -> bool:
    """Whether the registered model of ``model_spec`` has a ``dropout`` keyword (FM and LR
    have none: the tuned dropout is then not passed)."""
    from embedlab.models import MODELS

    init = MODELS.get(parse_spec(model_spec)[0])
    return "dropout" in inspect.signature(init).parameters


def pick_tuned(trials: Sequence[BenchRecord]) -> BenchRecord:
    """The trial with the best validation AUC, carrying the whole search in its record.

    ``params["tune"]``: the number of candidates, the chosen index, and each candidate's
    settings with its validation AUC / logloss; ``timing["tune_train_s"]``: the training time
    of all candidates (``train_s`` stays the chosen one's).
    """
    valid = [float(t.metrics.get("valid_auc", float("nan"))) for t in trials]
    chosen = choose_best(valid)
    best = trials[chosen]
    keys = [f.name for f in dataclasses.fields(TrainSettings)]  # the settings each record holds
    best.params["tune"] = {
        "candidates": len(trials),
        "chosen": chosen,
        "selected_on": "valid_auc",
        "trials": [
            {
                **{k: t.params.get(k) for k in keys},
                "valid_auc": t.metrics.get("valid_auc"),
                "valid_logloss": t.metrics.get("valid_logloss"),
                "epochs_run": t.params.get("epochs_run"),
            }
            for t in trials
        ],
    }
    best.timing["tune_train_s"] = sum(float(t.timing.get("train_s", 0.0)) for t in trials)
    return best
