"""Black-box interpretation of an embedding's classes: top-k input features, a surrogate
tree on them, its fidelity, and if-then rules.

After "Interpreting Black-box Machine Learning Models for High Dimensional Datasets"
(Karim et al., DSAA 2022): a black box (here an MLP whose hidden layer is an embedding)
learns the classes from high-dimensional inputs; probing (input gradients) or perturbing
(permutation, occlusion) ranks the input features; an interpretable surrogate (a decision
tree) is fitted to the black box's decisions on the top-k features only; its *fidelity*
(agreement with the black box on held-out rows) says how much of the black box the k
features explain, and its leaves are the rules.

The classes are given labels, or the k-means clusters of a given embedding (then the
black box learns to predict, from the inputs, which cluster the embedding puts a row in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from embedlab._validation import (
    check_choice,
    check_float_in_range,
    check_int,
    check_points,
    check_same_rows,
)
from embedlab.analysis._explain_rules import Rule, tree_rules

__all__ = ["ExplainResult", "explain_embedding", "feature_importance"]

ImportanceMethod = Literal["permutation", "occlusion", "gradient"]
METHODS: tuple[str, ...] = ("gradient", "occlusion", "permutation")
DEFAULT_KS = (10, 20, 50)
ProbaFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ExplainResult:
    """What :func:`explain_embedding` found.

    Attributes:
        method: the importance method.
        target: ``"labels"`` or ``"clusters"`` (k-means clusters of a given embedding).
        n_classes: number of classes (rules name them by their given label).
        importance: ``(n_features,)`` importance of each input feature (larger: more).
        ranking: feature indices, most important first.
        ks: the k values measured.
        fidelity: k -> agreement of the surrogate on the top-k features with the black box
            on the held-out rows.
        fidelity_random: k -> the same for a tree on k random features (a baseline).
        fidelity_all: the same for a tree on every feature.
        surrogate_accuracy: k -> accuracy of the top-k surrogate against the true classes.
        black_box_accuracy: held-out accuracy of the black box against the true classes.
        rules_k: the k of the tree the rules come from.
        rules: class -> its rules (largest support first), for the top classes.
        feature_names: a name per input feature.
    """

    method: str
    target: str
    n_classes: int
    importance: np.ndarray
    ranking: np.ndarray
    ks: tuple[int, ...]
    fidelity: dict[int, float]
    fidelity_random: dict[int, float]
    fidelity_all: float
    surrogate_accuracy: dict[int, float]
    black_box_accuracy: float
    rules_k: int
    rules: dict[int, list[Rule]]
    feature_names: list[str] = field(repr=False)

    def rules_text(self) -> str:
        """The rules as plain text, one block per class."""
        lines = [
            f"# rules of the surrogate tree on the top {self.rules_k} features "
            f"(fidelity {self.fidelity[self.rules_k]:.3f}, method {self.method})"
        ]
        for label, rules in self.rules.items():
            lines.append("")
            lines.append(f"## class {label}")
            lines.extend(r.text(self.feature_names) for r in rules)
        return "\n".join(lines) + "\n"

    def to_dict(self, top: int = 50) -> dict[str, Any]:
        """JSON-ready summary; ``top`` ranked features are listed by name."""
        names = self.feature_names
        return {
            "method": self.method,
            "target": self.target,
            "n_features": int(self.importance.shape[0]),
            "n_classes": self.n_classes,
            "black_box_accuracy": self.black_box_accuracy,
            "fidelity": {str(k): v for k, v in self.fidelity.items()},
            "fidelity_random": {str(k): v for k, v in self.fidelity_random.items()},
            "fidelity_all": self.fidelity_all,
            "surrogate_accuracy": {str(k): v for k, v in self.surrogate_accuracy.items()},
            "top_features": [
                {"feature": int(j), "name": names[j], "importance": float(self.importance[j])}
                for j in self.ranking[:top]
            ],
            "importance": [float(v) for v in self.importance],
            "rules_k": self.rules_k,
            "rules": {str(c): [r.to_dict(names) for r in rs] for c, rs in self.rules.items()},
        }


def _classes(
    x: np.ndarray, target: Any, n_clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Class ids ``(n,)`` in ``[0, c)``, the label of each id, and the target kind: from
    labels, or from the k-means clusters of an embedding."""
    arr = np.asarray(target)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"labels_or_embedding must be labels (n,) or an embedding (n, m), got shape {arr.shape}"
        )
    check_same_rows("X", x.shape[0], "labels_or_embedding", arr.shape[0])
    if arr.ndim == 2:
        emb = check_points("labels_or_embedding", arr)
        from sklearn.cluster import KMeans

        check_int("n_clusters", n_clusters, min_value=2)
        if n_clusters > emb.shape[0]:
            raise ValueError(
                f"n_clusters must be <= the number of rows ({emb.shape[0]}), got {n_clusters}"
            )
        km = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed)
        ids = np.asarray(km.fit_predict(emb), dtype=np.int64)
        return ids, np.arange(n_clusters), "clusters"
    integral = arr.dtype.kind in "iub" or (
        arr.dtype.kind == "f"
        and bool(np.all(np.isfinite(arr)))
        and not np.any(arr != np.round(arr))
    )
    if not integral:
        raise ValueError(
            f"labels must be integer class ids, got dtype {arr.dtype} with non-integer "
            "or non-finite values"
        )
    values, ids = np.unique(arr, return_inverse=True)
    return ids.astype(np.int64).reshape(-1), values.astype(np.int64), "labels"


def feature_importance(
    x: np.ndarray,
    predict_proba: ProbaFn,
    *,
    method: ImportanceMethod = "permutation",
    baseline: np.ndarray | None = None,
    gradients: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Importance ``(n_features,)`` of each input feature for a black box's decisions on ``x``.

    Args:
        x: ``(n, d)`` rows to explain.
        predict_proba: the black box, rows ``(m, d)`` -> class probabilities ``(m, c)``.
        method: ``"permutation"``: mean drop of the probability of the black box's own class
            when the feature's column is shuffled; ``"occlusion"``: the same when the feature
            is set to ``baseline`` (its mean); ``"gradient"`` (probing): mean
            ``|d log p(class) / d x_j| * std_j``, needs ``gradients``.
        baseline: ``(d,)`` occlusion values; default the column means of ``x``.
        gradients: ``(rows, classes) -> (n, d)`` input gradients of the log probability.
        seed: seeds the permutations.
    """
    check_choice("method", method, METHODS)
    proba = predict_proba(x)
    own = np.argmax(proba, axis=1)
    p_own = proba[np.arange(x.shape[0]), own]
    d = x.shape[1]
    if method == "gradient":
        if gradients is None:
            raise ValueError(
                "method='gradient' needs a black box with input gradients; use "
                "method='permutation' or 'occlusion' with a given predict_proba"
            )
        return np.asarray(np.abs(gradients(x, own)).mean(axis=0) * x.std(axis=0))
    rng = np.random.default_rng(seed)
    fill = x.mean(axis=0) if baseline is None else np.asarray(baseline, dtype=np.float64)
    out = np.zeros(d)
    work = x.copy()
    for j in range(d):
        keep = work[:, j].copy()
        work[:, j] = rng.permutation(keep) if method == "permutation" else fill[j]
        p = predict_proba(work)[np.arange(x.shape[0]), own]
        out[j] = float(np.mean(p_own - p))
        work[:, j] = keep
    return out


def _check_ks(ks: Sequence[int] | None, d: int) -> tuple[int, ...]:
    if ks is None:
        return tuple(sorted({min(k, d) for k in DEFAULT_KS}))
    if isinstance(ks, (int, np.integer)):
        ks = [int(ks)]
    out = sorted({check_int("ks", k, min_value=1) for k in ks})
    if not out:
        raise ValueError("ks must hold at least one k, got an empty list")
    if out[-1] > d:
        raise ValueError(f"ks must be <= n_features ({d}), got k={out[-1]}")
    return tuple(out)


def explain_embedding(
    X: Any,
    labels_or_embedding: Any,
    *,
    ks: Sequence[int] | None = None,
    method: ImportanceMethod = "permutation",
    n_clusters: int = 10,
    max_depth: int = 6,
    top_classes: int = 3,
    rules_per_class: int = 3,
    test_size: float = 0.25,
    max_eval: int = 1000,
    epochs: int | None = None,
    predict_proba: ProbaFn | None = None,
    feature_names: Sequence[str] | None = None,
    seed: int = 0,
) -> ExplainResult:
    """Explain which input features decide the classes of an embedding, with a surrogate tree.

    Args:
        X: ``(n, d)`` input features (finite).
        labels_or_embedding: ``(n,)`` integer class labels, or an ``(n, m)`` embedding of
            the rows whose ``n_clusters`` k-means clusters are the classes.
        ks: numbers of top features for the surrogate; default 10, 20, 50 (capped at ``d``).
        method: ``"permutation"``, ``"occlusion"`` (perturbing) or ``"gradient"`` (probing).
        n_clusters: clusters of an embedding target.
        max_depth: depth of the surrogate trees.
        top_classes: the classes (most often predicted first) whose rules are kept.
        rules_per_class: rules kept per class (largest support first).
        test_size: held-out fraction (fidelity and importance are measured on it).
        max_eval: at most this many held-out rows are perturbed (cost: ``d`` black-box calls).
        epochs: training epochs of the default black box (an MLP); default 30, and more on
            small data (at least 1000 Adam steps).
        predict_proba: your own black box ``(m, d) -> (m, c)`` probabilities instead of the
            MLP, one column per class in sorted label order (then ``method="gradient"`` is
            not available).
        feature_names: a name per feature; default ``x0, x1, ...``.
        seed: seeds the split, the black box, the permutations and the trees.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(400, 20))
        >>> y = (x[:, 3] > 0).astype(int)
        >>> res = explain_embedding(x, y, ks=[5])
        >>> int(res.ranking[0])
        3
    """
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    x = check_points("X", X, min_points=8).astype(np.float64)
    d = x.shape[1]
    seed = check_int("seed", seed, min_value=0)
    method = check_choice("method", method, METHODS)  # type: ignore[assignment]
    k_list = _check_ks(ks, d)
    for name, v in (("max_depth", max_depth), ("top_classes", top_classes)):
        check_int(name, v, min_value=1)
    check_int("rules_per_class", rules_per_class, min_value=1)
    check_int("max_eval", max_eval, min_value=1)
    if epochs is not None:
        check_int("epochs", epochs, min_value=1)
    check_float_in_range("test_size", test_size, 0.05, 0.95)
    names = [f"x{j}" for j in range(d)] if feature_names is None else list(feature_names)
    if len(names) != d:
        raise ValueError(f"feature_names must have one name per feature ({d}), got {len(names)}")
    y, values, target = _classes(x, labels_or_embedding, n_clusters, seed)
    n_classes = int(y.max()) + 1
    if n_classes < 2:
        raise ValueError("labels_or_embedding must give at least 2 classes, got 1")

    idx = np.arange(x.shape[0])
    counts = np.bincount(y)
    strat = y if counts.min() >= 2 else None
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=strat)

    gradients = None
    if predict_proba is None:
        from embedlab.analysis._explain_model import MLPBlackBox

        steps = {} if epochs is None else {"epochs": epochs, "min_steps": 0}
        box = MLPBlackBox(seed=seed, **steps).fit(x[tr], y[tr], n_classes)
        proba_fn: ProbaFn = box.predict_proba
        gradients = box.input_gradients
    else:
        proba_fn = predict_proba
    p_train = np.asarray(proba_fn(x[tr]))
    if p_train.ndim != 2 or p_train.shape != (tr.size, n_classes):
        raise ValueError(
            f"predict_proba must return ({tr.size}, {n_classes}) probabilities for {tr.size} "
            f"rows (one column per class, sorted by label), got shape {p_train.shape}"
        )
    bb_train = np.argmax(p_train, axis=1)
    bb_test = np.argmax(proba_fn(x[te]), axis=1)

    rng = np.random.default_rng(seed)
    ev = te if te.size <= max_eval else rng.choice(te, size=max_eval, replace=False)
    importance = feature_importance(
        x[ev],
        proba_fn,
        method=method,
        baseline=x[tr].mean(axis=0),
        gradients=gradients,
        seed=seed,
    )
    ranking = np.argsort(-importance, kind="stable")

    def surrogate(cols: np.ndarray) -> Any:
        tree = DecisionTreeClassifier(max_depth=max_depth, random_state=seed)
        return tree.fit(x[tr][:, cols], bb_train)

    fidelity: dict[int, float] = {}
    fidelity_random: dict[int, float] = {}
    accuracy: dict[int, float] = {}
    trees: dict[int, Any] = {}
    for k in k_list:
        cols = ranking[:k]
        tree = trees[k] = surrogate(cols)
        pred = tree.predict(x[te][:, cols])
        fidelity[k] = float(np.mean(pred == bb_test))
        accuracy[k] = float(np.mean(pred == y[te]))
        rand_cols = rng.choice(d, size=k, replace=False)
        rand_pred = surrogate(rand_cols).predict(x[te][:, rand_cols])
        fidelity_random[k] = float(np.mean(rand_pred == bb_test))
    all_cols = np.arange(d)
    fidelity_all = float(np.mean(surrogate(all_cols).predict(x[te]) == bb_test))

    rules_k = k_list[-1]
    tree = trees[rules_k]
    all_rules = tree_rules(tree, ranking[:rules_k], values[tree.classes_])
    order = np.argsort(-np.bincount(bb_test, minlength=n_classes), kind="stable")
    rules: dict[int, list[Rule]] = {}
    for c in order[:top_classes]:
        own = [r for r in all_rules if r.label == int(values[c])]
        own.sort(key=lambda r: (-r.support, -r.precision))
        rules[int(values[c])] = own[:rules_per_class]
    return ExplainResult(
        method=method,
        target=target,
        n_classes=n_classes,
        importance=importance,
        ranking=ranking,
        ks=k_list,
        fidelity=fidelity,
        fidelity_random=fidelity_random,
        fidelity_all=fidelity_all,
        surrogate_accuracy=accuracy,
        black_box_accuracy=float(np.mean(bb_test == y[te])),
        rules_k=rules_k,
        rules=rules,
        feature_names=names,
    )
