"""The disentanglement suite: autoencoders trained on images with known factors, scored by
InfoM / InfoE / InfoC (Hsu et al. 2023) and reconstruction MSE."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from embedlab import __version__
from embedlab._registry import parse_spec
from embedlab._validation import check_int, check_positive_float
from embedlab.bench._record import BenchRecord
from embedlab.data.shapes import FactorData

__all__ = ["DISENTANGLE_METRICS", "run_disentangle_bench"]

DISENTANGLE_METRICS = ("infom", "infoe", "infoc", "mse")


def run_disentangle_bench(
    data: FactorData,
    *,
    methods: Sequence[str],
    seeds: Sequence[int] = (0,),
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    n_latents: int | None = None,
    eval_n: int = 2000,
    on_record: Callable[[BenchRecord], None] | None = None,
) -> list[BenchRecord]:
    """Train each autoencoder spec with each seed on ``data.images``; score its code.

    Args:
        data: images ``(n, channels, size, size)`` with their factors (used for scoring only).
        methods: autoencoder specs (``"ae"``, ``"lq_ae(n_values=10)"``, ``"beta_vae(beta=4)"``);
            an unknown name fails before any run with the registry's list.
        seeds: one run per (method, seed); the seed sets the weights, shuffling and noise.
        epochs: training epochs.
        batch_size: samples per step.
        lr: AdamW learning rate (weight decay is the method's, see each class).
        n_latents: latent dimensions; default twice the number of factors (as the paper).
        eval_n: InfoMEC is computed on the first ``eval_n`` samples (the KSG estimator of
            continuous codes is the slow part); MSE on all samples.
        on_record: called with each record as soon as it is measured.

    Returns:
        Records of suite ``"disentangle"``: metrics ``infom`` (the report's primary),
        ``infoe``, ``infoc``, ``mse`` and ``active_latents``; timing ``train_s``,
        ``eval_s``; params the model's hyper-parameters, ``epochs``, ``n`` and ``eval_n``.
        A run whose code is constant on every latent (e.g. a quantised code that has not
        left its initial value) gets ``status="collapsed"`` with ``mse`` only; a run that
        fails gets ``status="failed"`` and the error.

    Example:
        >>> from embedlab.data.shapes import make_shapes
        >>> recs = run_disentangle_bench(make_shapes(64, size=16), methods=["ae"], epochs=1)
        >>> sorted(recs[0].metrics)[:3]
        ['active_latents', 'infoc', 'infoe']
    """
    import torch

    from embedlab.analysis.infomec import infomec
    from embedlab.disentangle import (
        AUTOENCODERS,
        encode,
        make_autoencoder,
        reconstruction_mse,
        train_autoencoder,
    )

    if not methods:
        raise ValueError("methods must not be empty")
    if not seeds:
        raise ValueError("seeds must not be empty")
    for s in seeds:
        check_int("seed", s, min_value=0)
    for spec in methods:
        AUTOENCODERS.get(parse_spec(spec)[0])
    check_int("epochs", epochs, min_value=1)
    check_int("batch_size", batch_size, min_value=1)
    check_positive_float("lr", lr)
    k = 2 * data.factors.shape[1] if n_latents is None else n_latents
    check_int("n_latents", k, min_value=1)
    eval_n = min(check_int("eval_n", eval_n, min_value=2), len(data))
    in_shape = tuple(int(v) for v in data.images.shape[1:])
    records: list[BenchRecord] = []
    for seed in seeds:
        for spec in methods:
            torch.manual_seed(seed)  # initial weights
            model = make_autoencoder(spec, in_shape, n_latents=k)
            params = {
                **model.hyper_parameters(),
                "spec": spec,
                "epochs": epochs,
                "batch_size": batch_size,
                "lr": lr,
                "n": len(data),
                "eval_n": eval_n,
            }
            record = BenchRecord(
                suite="disentangle",
                dataset=data.name,
                method=spec,
                model=model.name,
                params=params,
                seed=seed,
                embedlab_version=__version__,
            )
            try:
                log = train_autoencoder(
                    model, data.images, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed
                )
                start = time.perf_counter()
                codes = encode(model, data.images[:eval_n])
                mse = reconstruction_mse(model, data.images)
                if np.ptp(codes, axis=0).max() == 0:  # InfoM / InfoC are undefined
                    record.status = "collapsed"
                    record.error = "every latent is constant on the evaluated images"
                    record.metrics = {"mse": mse, "active_latents": 0.0}
                    records.append(record)
                    if on_record is not None:
                        on_record(record)
                    continue
                scores = infomec(
                    data.factors[:eval_n], codes, discrete_latents=model.discrete_codes, seed=seed
                )
            except (ValueError, RuntimeError) as exc:
                record.status, record.error = "failed", str(exc)
            else:
                record.metrics = {
                    "infom": scores.infom,
                    "infoe": scores.infoe,
                    "infoc": scores.infoc,
                    "mse": mse,
                    "active_latents": float(np.sum(scores.active)),
                }
                record.timing = {"train_s": log.train_s, "eval_s": time.perf_counter() - start}
            records.append(record)
            if on_record is not None:
                on_record(record)
    return records
