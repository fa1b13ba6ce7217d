"""Deep kernel machines (Yang et al., ICML 2023): learned Gram matrices per layer.

- :func:`dkm_objective`: log-likelihood minus ``nu``-weighted KL to the NNGP prior kernel;
- :class:`DeepKernelMachine`: full DKM, one ``(n, n)`` Gram per layer;
- :class:`SparseDKMClassifier`: inducing-point DKM, cost linear in ``n`` (``nu=inf``: sparse NNGP);
- :class:`NNGPClassifier`: the exact NNGP baseline (``nu -> inf``).
"""

from __future__ import annotations

from embedlab.kernels.dkm import DeepKernelMachine, input_gram, nngp_grams
from embedlab.kernels.nngp import NNGPClassifier
from embedlab.kernels.objective import (
    dkm_objective,
    gaussian_kl,
    gp_log_likelihood,
    stable_cholesky,
)
from embedlab.kernels.relu_kernel import relu_kernel, relu_kernel_cross
from embedlab.kernels.sgpr import condition_on_inducing, sgpr_bound, sgpr_predict
from embedlab.kernels.sparse_dkm import SparseDKMClassifier

__all__ = [
    "DeepKernelMachine",
    "NNGPClassifier",
    "SparseDKMClassifier",
    "condition_on_inducing",
    "dkm_objective",
    "gaussian_kl",
    "gp_log_likelihood",
    "input_gram",
    "nngp_grams",
    "relu_kernel",
    "relu_kernel_cross",
    "sgpr_bound",
    "sgpr_predict",
    "stable_cholesky",
]
