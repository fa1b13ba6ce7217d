"""If-then rules read from a fitted sklearn decision tree: one rule per leaf (root-to-leaf path).

Conditions on the same feature along a path are merged into one interval, so a rule reads
``IF 0.12 < px(14,15) <= 0.8 AND x3 > 1.5 THEN class 4``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Rule", "tree_rules"]


@dataclass(frozen=True)
class Rule:
    """One leaf of the surrogate tree as a readable rule.

    Attributes:
        conditions: ``(feature index, lower bound or None, upper bound or None)``; the rule
            holds where ``lower < x[feature] <= upper``.
        label: the class the leaf predicts.
        support: training rows reaching the leaf.
        precision: fraction of those rows whose black-box class is ``label``.
    """

    conditions: tuple[tuple[int, float | None, float | None], ...]
    label: int
    support: int
    precision: float

    def features(self) -> list[int]:
        """The feature indices the rule tests."""
        return [f for f, _, _ in self.conditions]

    def text(self, names: Sequence[str]) -> str:
        """``IF ... THEN class c  [support s, precision p]`` with ``names[f]`` for feature f."""
        parts = []
        for f, lo, hi in self.conditions:
            name = names[f]
            if lo is not None and hi is not None:
                parts.append(f"{lo:.4g} < {name} <= {hi:.4g}")
            elif lo is not None:
                parts.append(f"{name} > {lo:.4g}")
            else:
                parts.append(f"{name} <= {hi:.4g}")
        cond = " AND ".join(parts) if parts else "TRUE"
        return (
            f"IF {cond} THEN class {self.label}  "
            f"[support {self.support}, precision {self.precision:.3f}]"
        )

    def to_dict(self, names: Sequence[str]) -> dict[str, Any]:
        """JSON-ready form (feature names, bounds, label, support, precision, text)."""
        return {
            "conditions": [
                {"feature": int(f), "name": names[f], "gt": lo, "le": hi}
                for f, lo, hi in self.conditions
            ],
            "label": self.label,
            "support": self.support,
            "precision": self.precision,
            "text": self.text(names),
        }


def tree_rules(tree: Any, columns: Sequence[int] | np.ndarray, classes: np.ndarray) -> list[Rule]:
    """Every leaf of ``tree`` (a fitted ``DecisionTreeClassifier``) as a :class:`Rule`.

    Args:
        tree: the fitted classifier; it was trained on ``X[:, columns]``.
        columns: original feature index of each column the tree saw.
        classes: ``tree.classes_`` (the class label of each output column).
    """
    t = tree.tree_
    rules: list[Rule] = []
    # (node, bounds so far: feature -> [lower, upper])
    stack: list[tuple[int, dict[int, list[float | None]]]] = [(0, {})]
    while stack:
        node, bounds = stack.pop()
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left == right:  # a leaf
            counts = np.asarray(t.value[node][0], dtype=np.float64)
            best = int(np.argmax(counts))
            total = float(counts.sum())
            conds = tuple((f, bounds[f][0], bounds[f][1]) for f in sorted(bounds, key=lambda c: c))
            rules.append(
                Rule(
                    conditions=conds,
                    label=int(classes[best]),
                    support=int(t.n_node_samples[node]),
                    precision=float(counts[best] / total) if total > 0 else 0.0,
                )
            )
            continue
        feature = int(columns[int(t.feature[node])])
        threshold = float(t.threshold[node])
        lo, hi = bounds.get(feature, [None, None])
        go_left = dict(bounds)
        go_left[feature] = [lo, threshold if hi is None else min(hi, threshold)]
        go_right = dict(bounds)
        go_right[feature] = [threshold if lo is None else max(lo, threshold), hi]
        stack.append((right, go_right))
        stack.append((left, go_left))
    return rules
