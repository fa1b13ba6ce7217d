"""Mixup geometry probe: where the features of mixed inputs go as the mixing weight varies.

For pairs ``(a, b)`` of inputs of two classes A and B and mixed inputs
``x = lam * a + (1 - lam) * b``, the features ``h(x)`` are compared with the two class
means ``mu_A``, ``mu_B`` (of the clean features) and with a linear classifier:

- ``position``: the projection coefficient of ``h`` on the line through the class means,
  ``t = <h - mu_B, mu_A - mu_B> / ||mu_A - mu_B||^2`` (0 at ``mu_B``, 1 at ``mu_A``). Features
  that mix linearly give ``t = lam`` on average;
- ``distance``: the distance of ``h`` to that line, divided by ``||mu_A - mu_B||``;
- ``margin``: the classifier's logit margin ``z_A - z_B`` and ``frac_a``, the fraction of
  mixed inputs whose logit of A exceeds that of B.

Fischer et al., "Pushing Boundaries: Mixup's Influence on Neural Collapse", ICLR 2024,
find that features of mixed inputs of two different classes are *not* convex
combinations of the class means: they run along the decision boundary (``position`` jumps
from 0 to 1 around ``lam = 1/2`` with a sizeable ``distance``). Read these curves next to
:func:`embedlab.analysis.neural_collapse` of the clean features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab._validation import check_int, check_points
from embedlab.analysis._scale import pow2_scale

__all__ = ["MixupGeometry", "mixup_geometry", "mixup_probe"]


@dataclass(frozen=True)
class MixupGeometry:
    """Per-``lam`` summaries of mixed features (see the module docstring).

    Attributes:
        lams: ``(L,)`` mixing weights of class A.
        position: ``(L,)`` mean projection coefficient on the ``mu_B -> mu_A`` line.
        position_std: ``(L,)`` its standard deviation over pairs.
        distance: ``(L,)`` mean distance to the line / ``||mu_A - mu_B||``.
        margin: ``(L,)`` mean logit margin ``z_A - z_B`` (None without a classifier).
        frac_a: ``(L,)`` fraction with ``z_A > z_B`` (None without a classifier).
        linearity_gap: ``max_lam |position - lam|`` (0 when features mix linearly).
    """

    lams: np.ndarray
    position: np.ndarray
    position_std: np.ndarray
    distance: np.ndarray
    margin: np.ndarray | None
    frac_a: np.ndarray | None
    linearity_gap: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready lists and floats."""
        out: dict[str, Any] = {}
        for k in ("lams", "position", "position_std", "distance", "margin", "frac_a"):
            v = getattr(self, k)
            out[k] = None if v is None else [float(e) for e in v]
        out["linearity_gap"] = float(self.linearity_gap)
        return out


def _classifier(
    classifier: tuple[Any, Any] | None, classes: tuple[int, int], dim: int
) -> tuple[np.ndarray, float] | None:
    """The margin direction ``w_A - w_B`` and offset ``b_A - b_B``."""
    if classifier is None:
        return None
    if not isinstance(classifier, tuple) or len(classifier) != 2:
        raise TypeError("classifier must be a (weight (C, dim), bias (C,)) tuple or None")
    w = check_points("classifier weight", classifier[0]).astype(np.float64)
    if w.shape[1] != dim:
        raise ValueError(f"classifier weight must have shape (C, {dim}), got {w.shape}")
    bias = classifier[1]
    if hasattr(bias, "detach"):
        bias = bias.detach().cpu().numpy()
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    if b.shape != (w.shape[0],):
        raise ValueError(f"classifier bias must have shape ({w.shape[0]},), got {b.shape}")
    ca, cb = (check_int("classes", c, min_value=0) for c in classes)
    for c in (ca, cb):
        if c >= w.shape[0]:
            raise ValueError(f"classes must index the {w.shape[0]} classifier rows, got {c}")
    if ca == cb:
        raise ValueError(f"classes must be two different classifier rows, got {classes}")
    return w[ca] - w[cb], float(b[ca] - b[cb])


def mixup_geometry(
    mixed: Sequence[Any],
    lams: Sequence[float],
    mean_a: Any,
    mean_b: Any,
    *,
    classifier: tuple[Any, Any] | None = None,
    classes: tuple[int, int] = (0, 1),
) -> MixupGeometry:
    """Summaries of given features of mixed inputs, one ``(n_pairs, dim)`` array per ``lam``.

    Args:
        mixed: ``L`` arrays ``(n_pairs, dim)``: features of ``lam * a + (1 - lam) * b``.
        lams: ``(L,)`` the mixing weights, in ``[0, 1]``.
        mean_a, mean_b: ``(dim,)`` class means of the clean features of A and B (distinct).
        classifier: ``(weight (C, dim), bias (C,) or None)``, logits ``h @ weight.T + bias``.
        classes: the classifier rows of A and B.
    """
    lam = np.asarray(lams, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0 or not np.all((lam >= 0) & (lam <= 1)):
        raise ValueError(f"lams must be a non-empty 1-D sequence in [0, 1], got {lams!r}")
    if len(mixed) != lam.size:
        raise ValueError(f"mixed must hold one array per lam ({lam.size}), got {len(mixed)}")
    mu_a = check_points("mean_a", np.reshape(np.asarray(mean_a, dtype=np.float64), (1, -1)))[0]
    mu_b = check_points("mean_b", np.reshape(np.asarray(mean_b, dtype=np.float64), (1, -1)))[0]
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"mean_a and mean_b must have one shape, got {mu_a.shape}, {mu_b.shape}")
    if np.array_equal(mu_a, mu_b):
        raise ValueError("mean_a and mean_b must differ (the line between them is undefined)")
    # a power-of-two rescaling (exact) keeps 1e200 or 1e-200 features from over/underflowing
    d, scale = pow2_scale(mu_a - mu_b)
    gap = float(np.linalg.norm(d))  # in [1, 2 sqrt(dim))
    lin = _classifier(classifier, classes, mu_a.size)
    pos, pos_sd, dist, marg, frac = [], [], [], [], []
    for i, feats in enumerate(mixed):
        h = check_points(f"mixed[{i}]", feats).astype(np.float64)
        if h.shape[1] != mu_a.size:
            raise ValueError(f"mixed[{i}] must have {mu_a.size} columns, got {h.shape[1]}")
        rel = (h - mu_b) / scale  # (P, dim)
        t = rel @ d / gap**2
        resid = rel - t[:, None] * d
        pos.append(t.mean())
        pos_sd.append(t.std())
        dist.append(np.linalg.norm(resid, axis=1).mean() / gap)
        if lin is not None:
            m = h @ lin[0] + lin[1]
            marg.append(m.mean())
            frac.append((m > 0).mean())
    position = np.asarray(pos)
    return MixupGeometry(
        lams=lam,
        position=position,
        position_std=np.asarray(pos_sd),
        distance=np.asarray(dist),
        margin=None if lin is None else np.asarray(marg),
        frac_a=None if lin is None else np.asarray(frac),
        linearity_gap=float(np.abs(position - lam).max()),
    )


def mixup_probe(
    features: Callable[[np.ndarray], Any],
    x_a: Any,
    x_b: Any,
    *,
    lams: Sequence[float] = tuple(np.linspace(0.0, 1.0, 11)),
    classifier: tuple[Any, Any] | None = None,
    classes: tuple[int, int] = (0, 1),
    n_pairs: int | None = None,
    seed: int = 0,
) -> MixupGeometry:
    """Mix inputs of two classes and measure their features (see :func:`mixup_geometry`).

    Pairs: ``n_pairs`` (default ``min(len(x_a), len(x_b))``) rows of a random permutation
    of each class, paired in order. Class means: of ``features(x_a)`` and ``features(x_b)``
    (all rows).

    Args:
        features: inputs ``(n, ...)`` numpy -> features ``(n, dim)`` (numpy or tensor), e.g.
            ``lambda x: embedlab.training.embed(encoder, x)``.
        x_a, x_b: ``(n_a, ...)`` and ``(n_b, ...)`` inputs of class A and class B.
        lams, classifier, classes: as :func:`mixup_geometry`.
        n_pairs: mixed pairs per ``lam``.
        seed: the pairing.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(20, 3)) + 2, rng.normal(size=(20, 3))
        >>> g = mixup_probe(lambda x: x @ np.eye(3), a, b, lams=[0.0, 0.5, 1.0])
        >>> np.round(g.position, 6).tolist()
        [0.0, 0.5, 1.0]
    """
    xa, xb = np.asarray(x_a), np.asarray(x_b)
    if xa.ndim < 2 or xb.ndim < 2 or xa.shape[1:] != xb.shape[1:]:
        raise ValueError(
            f"x_a and x_b must be (n, ...) inputs of one shape, got {xa.shape} and {xb.shape}"
        )
    n_max = min(xa.shape[0], xb.shape[0])
    n = n_max if n_pairs is None else check_int("n_pairs", n_pairs, min_value=1)
    if n > n_max:
        raise ValueError(f"n_pairs must be <= min(len(x_a), len(x_b)) = {n_max}, got {n}")
    rng = np.random.default_rng(check_int("seed", seed, min_value=0))
    pa = xa[rng.permutation(xa.shape[0])[:n]]
    pb = xb[rng.permutation(xb.shape[0])[:n]]
    mu_a = check_points("features(x_a)", features(xa)).astype(np.float64).mean(axis=0)
    mu_b = check_points("features(x_b)", features(xb)).astype(np.float64).mean(axis=0)
    dtype = xa.dtype if xa.dtype.kind == "f" else np.float32
    mixed = [
        check_points("features(mixed)", features((lm * pa + (1 - lm) * pb).astype(dtype)))
        for lm in np.asarray(lams, dtype=np.float64)
    ]
    return mixup_geometry(mixed, lams, mu_a, mu_b, classifier=classifier, classes=classes)
