"""BT^2 backward compatibility on MNIST t10k, unseen-class protocol.

Old model: the small CNN, dim 32, trained briefly (1 epoch) with SupCon on digits 0-4.
An independently trained new model (wider CNN, dim 32, SupCon, no compatibility terms) is
the incompatible reference and, with ``--n-transforms 2``, the paper's phi_new' target.

``--n-transforms 2`` (default, the paper): a wider CNN backbone (d_new = 32) + a 32-dim extra
head and two chained orthonormal basis transformations (output 64 dims, first 32 old-
compatible), trained with the authors' losses (SupCon on the new' feature, influence CE
x10, cosine to the old model x10, cosine to the independent new model x1).
``--n-transforms 1``: our earlier single-transformation simplification (64 = 32 + 32 dims,
SupCon + influence + cross-model InfoNCE). Both train 4 epochs. Evaluated leave-one-out on
the unseen digits 5-9: old/old, new-query/old-gallery (the compatibility criterion: higher
than old/old) and new/new precision@1 and MAP@R.

Usage:
    python benchmarks/bt2_mnist.py [--data ../shared/data/mnist-t10k] [--n-transforms 2]
        [--seed 0] [--out bt2.safetensors]  (--out: single-transformation runs only)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--old-epochs", type=int, default=1)
    parser.add_argument("--new-epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-transforms", type=int, choices=(1, 2), default=2)
    parser.add_argument(
        "--influence-temperature",
        type=float,
        default=1.0,
        help="n-transforms 2: temperature of the influence classifier (paper: 1)",
    )
    parser.add_argument("--out", type=Path, default=None, help="export the transform here")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import numpy as np
    import torch

    torch.set_num_threads(1)

    from embedlab.bench.metric import load_labeled, metric_splits
    from embedlab.evaluate import retrieval_metrics
    from embedlab.losses import make_loss
    from embedlab.training.compat import compatibility_metrics, save_basis_transform, train_bt2
    from embedlab.training.compat_chain import train_bt2_chained
    from embedlab.training.encoders import ConvEncoder
    from embedlab.training.metric import MetricTrainer, embed

    train, test = metric_splits(load_labeled(f"mnist:{args.data}"))
    classes = np.unique(test.y)
    test = type(test)(test.x, np.searchsorted(classes, test.y), name=test.name)
    s = args.seed
    start = time.perf_counter()
    old = ConvEncoder(32, width=8, hidden=64, seed=s)
    MetricTrainer(epochs=args.old_epochs, seed=s, progress=False).fit(
        old, make_loss("supcon", dim=32, n_classes=5), train
    )
    indep = ConvEncoder(32, width=16, hidden=128, seed=s + 1)
    MetricTrainer(epochs=args.new_epochs, seed=s + 1, progress=False).fit(
        indep, make_loss("supcon", dim=32, n_classes=5), train
    )
    cross = retrieval_metrics(
        embed(indep, test.x), test.y, embed(old, test.x), test.y, leave_one_out=True, k=(1,)
    )
    if args.n_transforms == 1:
        result = train_bt2(
            old,
            ConvEncoder(64, width=16, hidden=128, seed=s + 1),
            make_loss("supcon", dim=64, n_classes=5),
            train,
            d_old=32,
            d_new=64,
            trainer=MetricTrainer(epochs=args.new_epochs, seed=s + 1, progress=False),
            seed=s,
        )
        encoder: torch.nn.Module = result.encoder
    else:
        chained = train_bt2_chained(
            old,
            ConvEncoder(32, width=16, hidden=128, seed=s + 2),
            make_loss("supcon", dim=32, n_classes=5),
            train,
            d_old=32,
            d_new=32,
            d_extra=32,
            reference_encoder=indep,
            temperature=args.influence_temperature,
            trainer=MetricTrainer(epochs=args.new_epochs, seed=s + 1, progress=False),
            seed=s,
        )
        encoder = chained.encoder
    m = compatibility_metrics(old, encoder, test)
    print(
        f"BT^2 (n_transforms={args.n_transforms}, seed {s}) on MNIST t10k, train 0-4, "
        f"test unseen 5-9 ({len(test)} queries, leave-one-out)"
    )
    print(f"{'query / gallery':<34}{'P@1':>8}{'MAP@R':>8}")
    for key, label in (
        ("old_old", "old / old (d=32)"),
        ("new_old", "new BT^2 [:32] / old (compat)"),
        ("new_new", "new BT^2 / new BT^2 (d=64)"),
    ):
        print(f"{label:<34}{m[key + '_precision_at_1']:8.3f}{m[key + '_map_at_r']:8.3f}")
    print(
        f"{'independent new / old (no BCT)':<34}"
        f"{cross['precision_at_1']:8.3f}{cross['map_at_r']:8.3f}"
    )
    ok = m["new_old_precision_at_1"] > m["old_old_precision_at_1"]
    print(f"compatibility criterion new/old > old/old (P@1): {'met' if ok else 'NOT met'}")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.out is not None and args.n_transforms == 1:
        save_basis_transform(args.out, result.encoder.transform, 32)
        print(f"transform written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
