"""InfoMEC: modularity, explicitness and compactness of a code w.r.t. known sources.

Hsu, Dorrell, Whittington, Wu, Finn, "Disentanglement via Latent Quantization" (NeurIPS 2023).
All three are grounded in the normalised mutual information matrix
``NMI[i, j] = I(s_i; z_j) / H(s_i)`` between source ``i`` and latent ``j``:

- **InfoM** (modularity): each *active* latent should carry information about one source:
  ``(mean_j max_i NMI[i, j] / sum_i NMI[i, j] - 1/K) / (1 - 1/K)``, ``K`` sources.
- **InfoC** (compactness): each source should be carried by one latent:
  ``(mean_i max_j NMI[i, j] / sum_j NMI[i, j] - 1/L) / (1 - 1/L)``, ``L`` active latents.
- **InfoE** (explicitness): how much of each source's entropy a *linear* (multinomial
  logistic) read-out of the code removes, ``(H_null - H_pred) / H_null`` averaged over
  sources, where ``H`` is the in-sample cross-entropy and the null model sees no features.

A latent is active when its range is above 1/20 of the largest range (continuous codes)
or above zero (discrete codes), as in the authors' code. Discrete latents use exact
plug-in mutual information; continuous latents the Kraskov (KSG) estimator of
``sklearn.feature_selection.mutual_info_classif`` on standardised latents.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab._validation import check_bool, check_finite, check_int

__all__ = [
    "InfoMEC",
    "explicitness",
    "infomec",
    "modularity_compactness",
    "normalized_mutual_information",
]


@dataclass(frozen=True)
class InfoMEC:
    """InfoM, InfoE, InfoC (each in [0, 1], higher is better) and what they came from.

    Args:
        infom: modularity.
        infoe: explicitness.
        infoc: compactness.
        nmi: ``(n_sources, n_latents)`` normalised mutual information.
        active: ``(n_latents,)`` which latents count for InfoM / InfoC.
        infoe_per_source: ``(n_sources,)`` the explicitness of each source.
    """

    infom: float
    infoe: float
    infoc: float
    nmi: np.ndarray
    active: np.ndarray
    infoe_per_source: np.ndarray


def _codes(name: str, values: np.ndarray) -> np.ndarray:
    """Each column relabelled as ``0..k-1`` (like sklearn's LabelEncoder)."""
    out = np.empty(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        out[:, j] = np.unique(values[:, j], return_inverse=True)[1].reshape(-1)
    return out


def _check_inputs(sources: Any, latents: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sources.detach().cpu() if hasattr(sources, "detach") else sources)
    z = np.asarray(latents.detach().cpu() if hasattr(latents, "detach") else latents)
    if s.ndim != 2 or s.shape[1] < 1:
        raise ValueError(f"sources must have shape (n, n_sources), got {s.shape}")
    if z.ndim != 2 or z.shape[1] < 1:
        raise ValueError(f"latents must have shape (n, n_latents), got {z.shape}")
    if s.shape[0] != z.shape[0]:
        raise ValueError(
            f"sources and latents must have the same number of rows, got {s.shape[0]} "
            f"and {z.shape[0]}"
        )
    if s.shape[0] < 2:
        raise ValueError(f"sources must have at least 2 rows, got {s.shape[0]}")
    if s.dtype.kind not in "iub":
        raise TypeError(f"sources must hold discrete (integer) values, got dtype {s.dtype}")
    check_finite("latents", z)
    return s, z.astype(np.float64)


def _standardise(z: np.ndarray) -> np.ndarray:
    """Columns scaled to zero mean, unit variance (constant columns: zero). Dividing by the
    largest magnitude first keeps the squares finite at any scale."""
    peak = np.abs(z).max(axis=0)
    z = z / np.where(peak > 0, peak, 1.0)
    std = z.std(axis=0)
    out: np.ndarray = (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return out


def _discrete_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (nats) of two label vectors coded ``0..k-1``."""
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    joint = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb) / a.size
    pa, pb = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])))


def normalized_mutual_information(
    sources: Any, latents: Any, *, discrete_latents: bool, n_neighbors: int = 10, seed: int = 0
) -> np.ndarray:
    """``(n_sources, n_latents)`` matrix ``I(s_i; z_j) / H(s_i)``.

    Args:
        sources: ``(n, n_sources)`` discrete ground-truth factors.
        latents: ``(n, n_latents)`` the code; discrete codes are compared value by value.
        discrete_latents: exact plug-in MI (True) or the KSG estimator with ``n_neighbors``.
        n_neighbors: neighbours of the KSG estimator (continuous latents only).
        seed: the KSG estimator's jitter.
    """
    s, z = _check_inputs(sources, latents)
    check_bool("discrete_latents", discrete_latents)
    check_int("n_neighbors", n_neighbors, min_value=1)
    s_codes = _codes("sources", s)
    out = np.zeros((s.shape[1], z.shape[1]), dtype=np.float64)
    if discrete_latents:
        z_codes = _codes("latents", z)
    else:
        from sklearn.feature_selection import mutual_info_classif

        z_std = _standardise(z)
    for i in range(s.shape[1]):
        h = _discrete_mi(s_codes[:, i], s_codes[:, i])
        if h <= 0:  # a constant source carries no information to recover
            continue
        if discrete_latents:
            row = [_discrete_mi(s_codes[:, i], z_codes[:, j]) for j in range(z.shape[1])]
            out[i] = np.asarray(row) / h
        else:
            mi = mutual_info_classif(
                z_std,
                s_codes[:, i],
                discrete_features=False,
                n_neighbors=n_neighbors,
                random_state=seed,
            )
            out[i] = np.asarray(mi, dtype=np.float64) / h
    return out


def _ratio_score(nmi: np.ndarray, axis: int) -> float:
    """``(mean of max / sum along axis - 1/k) / (1 - 1/k)``, ``k`` the axis' length. A row or
    column with no information at all scores ``1/k`` (no preference, contributes 0)."""
    k = nmi.shape[axis]
    if k < 2:
        return 1.0  # one candidate: the information cannot be spread
    total = nmi.sum(axis=axis)
    peak = nmi.max(axis=axis)
    ratio = np.where(total > 0, peak / np.where(total > 0, total, 1.0), 1.0 / k)
    return float((ratio.mean() - 1.0 / k) / (1.0 - 1.0 / k))


def modularity_compactness(nmi: np.ndarray, active: np.ndarray) -> tuple[float, float]:
    """``(InfoM, InfoC)`` from an NMI matrix ``(n_sources, n_latents)`` and the active
    latents ``(n_latents,)``; undefined (a ValueError) when no latent is active."""
    nmi = np.asarray(nmi, dtype=np.float64)
    active = np.asarray(active, dtype=bool)
    pruned = np.clip(nmi[:, active], 0.0, None)  # KSG estimates can dip below 0
    if pruned.shape[1] == 0:
        raise ValueError(
            "InfoM / InfoC need at least one latent that varies (an active latent); every "
            "latent is constant"
        )
    return _ratio_score(pruned, axis=0), _ratio_score(pruned, axis=1)


def _cross_entropy(x: np.ndarray, y: np.ndarray, max_iter: int) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return float(log_loss(y, model.predict_proba(x), labels=model.classes_))


def explicitness(
    sources: Any, latents: Any, *, discrete_latents: bool, max_iter: int = 100
) -> np.ndarray:
    """``(n_sources,)`` InfoE of each source: ``(H_null - H_pred) / H_null`` for an
    unpenalised multinomial logistic regression (balanced class weights) on the code —
    one-hot values for discrete latents, standardised values for continuous ones."""
    s, z = _check_inputs(sources, latents)
    check_bool("discrete_latents", discrete_latents)
    check_int("max_iter", max_iter, min_value=1)
    s_codes = _codes("sources", s)
    if discrete_latents:
        z_codes = _codes("latents", z)
        blocks = [np.eye(int(c.max()) + 1)[c] for c in z_codes.T]
        x = np.concatenate(blocks, axis=1)  # (n, sum of values per latent)
    else:
        x = _standardise(z)
    null = np.zeros((s.shape[0], 1))
    out = np.zeros(s.shape[1], dtype=np.float64)
    for i in range(s.shape[1]):
        y = s_codes[:, i]
        if y.max() == 0:
            out[i] = 1.0  # a constant source is trivially explicit
            continue
        h_null = _cross_entropy(null, y, max_iter)
        h_pred = _cross_entropy(x, y, max_iter)
        out[i] = (h_null - h_pred) / h_null
    return out


def infomec(
    sources: Any,
    latents: Any,
    *,
    discrete_latents: bool,
    n_neighbors: int = 10,
    max_iter: int = 100,
    seed: int = 0,
) -> InfoMEC:
    """InfoM, InfoE and InfoC of ``latents`` ``(n, n_latents)`` against the known discrete
    ``sources`` ``(n, n_sources)`` (Hsu et al. 2023).

    Args:
        sources: ``(n, n_sources)`` integer ground-truth factors.
        latents: ``(n, n_latents)`` finite code (e.g. an encoder's means, or codebook indices).
        discrete_latents: the code takes few distinct values per dimension (a quantised
            code): exact mutual information and one-hot read-out.
        n_neighbors: KSG neighbours for continuous latents.
        max_iter: L-BFGS iterations of each logistic regression.
        seed: the KSG estimator's jitter.

    Example:
        >>> import numpy as np
        >>> s = np.indices((4, 3)).reshape(2, -1).T  # every combination once
        >>> r = infomec(s, s[:, ::-1], discrete_latents=True)
        >>> round(r.infom, 6), round(r.infoc, 6)
        (1.0, 1.0)
    """
    s, z = _check_inputs(sources, latents)
    nmi = normalized_mutual_information(
        s, z, discrete_latents=discrete_latents, n_neighbors=n_neighbors, seed=seed
    )
    ranges = (z.max(axis=0) - z.min(axis=0)) / max(float(np.abs(z).max()), 1e-300)
    active = ranges > 0 if discrete_latents else ranges > ranges.max() / 20.0
    infom, infoc = modularity_compactness(nmi, active)
    per_source = explicitness(s, z, discrete_latents=discrete_latents, max_iter=max_iter)
    return InfoMEC(
        infom=infom,
        infoe=float(per_source.mean()),
        infoc=infoc,
        nmi=nmi,
        active=active,
        infoe_per_source=per_source,
    )
