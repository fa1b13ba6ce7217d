"""The bundle-completion suite: CLHE and its ablations complete the held-out half of each
test bundle; scored by Recall@k and NDCG@k over all items (given items excluded)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from embedlab import __version__
from embedlab._registry import parse_spec
from embedlab._validation import check_int, check_positive_float
from embedlab.bench._record import BenchRecord
from embedlab.data.bundles import BundleData, split_halves

__all__ = ["run_bundle_bench"]


def run_bundle_bench(
    data: BundleData | Callable[[int], BundleData],
    *,
    methods: Sequence[str],
    seeds: Sequence[int] = (0,),
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-3,
    k: int = 20,
    on_record: Callable[[BenchRecord], None] | None = None,
) -> list[BenchRecord]:
    """Train each method spec with each seed on the training bundles; score the test halves.

    Args:
        data: the bundle data, or ``seed -> BundleData`` so that each seed splits anew.
        methods: specs of :func:`~embedlab.bundle.make_bundle_model` (``"mean"``,
            ``"clhe"``, ``"clhe_nocl"``, ``"clhe(dim=32)"``); an unknown name fails
            before any run.
        seeds: one run per (method, seed); the seed sets the split (when ``data`` is a
            callable), the given halves, the weights and the augmentations.
        epochs: training epochs.
        batch_size: bundles per step.
        lr: Adam learning rate.
        k: the cut-off of Recall@k and NDCG@k.
        on_record: called with each record as soon as it is measured.

    Returns:
        Records of suite ``"bundle"``: metrics ``recall@k`` (primary), ``ndcg@k`` on the
        test bundles and ``valid_recall@k``, ``final_loss``; timing ``train_s``,
        ``eval_s``; params the model's hyper-parameters, ``epochs``, ``batch_size``,
        ``lr``, ``n_items``, ``n_train``, ``n_test``. A run that fails gets
        ``status="failed"`` and the error.

    Example:
        >>> from embedlab.data.bundles import make_planted_bundles
        >>> d = make_planted_bundles(n_items=24, n_groups=4, n_bundles=60)
        >>> recs = run_bundle_bench(d, methods=["mean"], epochs=1, k=5)
        >>> sorted(recs[0].metrics)
        ['final_loss', 'ndcg@5', 'recall@5', 'valid_recall@5']
    """
    import torch

    from embedlab.bundle import (
        BUNDLE_METHODS,
        evaluate_completion,
        make_bundle_model,
        train_bundle_model,
    )

    if not methods:
        raise ValueError("methods must not be empty")
    if not seeds:
        raise ValueError("seeds must not be empty")
    for s in seeds:
        check_int("seed", s, min_value=0)
    for spec in methods:
        name = parse_spec(spec)[0]
        if name not in BUNDLE_METHODS:
            raise ValueError(
                f"methods must be among {', '.join(sorted(BUNDLE_METHODS))}; got {name!r}"
            )
    check_int("epochs", epochs, min_value=1)
    check_int("batch_size", batch_size, min_value=1)
    check_positive_float("lr", lr)
    check_int("k", k, min_value=1)
    records: list[BenchRecord] = []
    for seed in seeds:
        split = data(seed) if callable(data) else data
        test_given, test_rest = split_halves(split.test, seed=seed)
        valid_given, valid_rest = split_halves(split.valid, seed=seed)
        for spec in methods:
            torch.manual_seed(seed)  # initial weights
            record = BenchRecord(
                suite="bundle",
                dataset=split.name,
                method=spec,
                model="clhe",
                seed=seed,
                embedlab_version=__version__,
            )
            try:
                model = make_bundle_model(spec, split.item_features)
                record.params = {
                    **model.hyper_parameters(),
                    "spec": spec,
                    "epochs": epochs,
                    "batch_size": batch_size,
                    "lr": lr,
                    "k": k,
                    "n_items": split.n_items,
                    "n_train": len(split.train),
                    "n_test": len(split.test),
                }
                log = train_bundle_model(
                    model, split.train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed
                )
                start = time.perf_counter()
                metrics = evaluate_completion(model, test_given, test_rest, k=k)
                if split.valid:
                    valid = evaluate_completion(model, valid_given, valid_rest, k=k)
                    metrics[f"valid_recall@{k}"] = valid[f"recall@{k}"]
                metrics["final_loss"] = log.loss[-1]
            except (ValueError, RuntimeError) as exc:
                record.status, record.error = "failed", str(exc)
            else:
                record.metrics = metrics
                record.timing = {"train_s": log.train_s, "eval_s": time.perf_counter() - start}
            records.append(record)
            if on_record is not None:
                on_record(record)
    return records
