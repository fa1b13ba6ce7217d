"""Digits as point clouds: NUFT spectral grid / NUFT raster vs a histogram raster, same CNN.

Each image becomes ``--points`` points sampled with probability proportional to pixel
intensity, jittered uniformly inside their pixel, in ``[0, 1)^2`` (Jiang et al., ICLR 2019,
DDSL / NUFT CNNs, feed non-uniform signals to a CNN through the NUFT). The same small CNN is
trained on four ``res x res`` inputs built from the same points:

- ``hist``: a histogram raster (points counted per pixel), the plain rasterisation;
- ``nuft_raster``: the NUFT of the points followed by a Gaussian low-pass and ``ifft2``;
- ``nuft_spectral``: the NUFT grid itself (real and imaginary parts, zero frequency
  centred), 2 channels;
- ``image`` (reference): the original image area-resized to ``res x res`` (not a point set).

Data: mnist-t10k (8,000 train / 2,000 test) from ``../shared/data`` when present, else
scikit-learn's 8x8 digits (1,437 / 360).

Usage:
    python benchmarks/nuft_digits.py [--data ../shared/data/mnist-t10k] [--res 16]
        [--points 100] [--epochs 6] [--seeds 0,1,2] [--sigma 1.0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def sample_points(images: np.ndarray, n_points: int, seed: int) -> np.ndarray:
    """``(n, h, w)`` intensities -> ``(n, n_points, 2)`` coordinates in ``[0, 1)^2``."""
    rng = np.random.default_rng(seed)
    n, h, w = images.shape
    flat = images.reshape(n, -1).astype(np.float64)
    prob = flat / flat.sum(1, keepdims=True)
    cum = np.cumsum(prob, axis=1)
    u = rng.random((n, n_points))
    idx = np.stack([np.searchsorted(cum[i], u[i], side="right") for i in range(n)])
    idx = np.minimum(idx, h * w - 1)  # inverse CDF
    rows, cols = idx // w, idx % w
    jitter = rng.random((n, n_points, 2))
    pts = np.stack([(rows + jitter[..., 0]) / h, (cols + jitter[..., 1]) / w], axis=-1)
    return pts.astype(np.float32)


def histogram(points: np.ndarray, res: int) -> np.ndarray:
    """Points counted per pixel of a ``res x res`` grid: ``(n, 1, res, res)``."""
    n = points.shape[0]
    cell = np.minimum((points * res).astype(np.int64), res - 1)
    flat = cell[..., 0] * res + cell[..., 1]
    out = np.zeros((n, res * res), dtype=np.float32)
    np.add.at(out, (np.repeat(np.arange(n), points.shape[1]), flat.ravel()), 1.0)
    return out.reshape(n, 1, res, res)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--res", type=int, default=16)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--sigma", type=float, default=1.0, help="low-pass width (pixels)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--reps", default="hist,nuft_raster,nuft_spectral,image")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F
    from torch import nn

    from embedlab.data import load_digits, load_mnist
    from embedlab.layers import NUFT

    torch.set_num_threads(1)
    if args.data.exists():
        data = load_mnist(args.data)
        n_train = 8000
    else:
        print(f"{args.data} not found: using scikit-learn's 8x8 digits")
        data = load_digits()
        n_train = 1437
    images, labels = data.x[:, 0], data.y
    perm = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[perm], labels[perm]
    t0 = time.time()
    pts = sample_points(images, args.points, seed=0)
    pts_t = torch.from_numpy(pts)
    reps: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        raster = NUFT(args.res, output="raster", sigma=args.sigma)
        spectral = NUFT(args.res)
        ras, spec = [], []
        for start in range(0, len(pts_t), 500):
            chunk = pts_t[start : start + 500]
            ras.append(raster(chunk)[:, None])
            s = torch.fft.fftshift(spectral(chunk), dim=(-2, -1)) / args.points
            spec.append(torch.view_as_real(s).permute(0, 3, 1, 2))
        reps["nuft_raster"] = torch.cat(ras)
        reps["nuft_spectral"] = torch.cat(spec)
    reps["hist"] = torch.from_numpy(histogram(pts, args.res))
    reps["image"] = F.interpolate(torch.from_numpy(images[:, None]), size=args.res, mode="area")
    print(
        f"{data.name}: {n_train} train / {len(labels) - n_train} test, {args.points} points "
        f"per image, grid {args.res}x{args.res}, sigma {args.sigma}; inputs built in "
        f"{time.time() - t0:.1f}s"
    )
    y = torch.from_numpy(labels)

    def make_cnn(in_ch: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(in_ch, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, 10),
        )

    results: dict[str, list[float]] = {}
    for name in args.reps.split(","):
        x = reps[name]
        x_train, x_test = x[:n_train], x[n_train:]
        mean, std = x_train.mean(), x_train.std()
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        for seed in (int(s) for s in args.seeds.split(",")):
            torch.manual_seed(seed)
            model = make_cnn(x.shape[1])
            opt = torch.optim.Adam(model.parameters(), lr=2e-3)
            gen = torch.Generator().manual_seed(seed)
            t1 = time.time()
            for _ in range(args.epochs):
                model.train()
                order = torch.randperm(n_train, generator=gen)
                for start in range(0, n_train, 128):
                    batch = order[start : start + 128]
                    loss = F.cross_entropy(model(x_train[batch]), y[:n_train][batch])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            model.eval()
            with torch.no_grad():
                acc = float((model(x_test).argmax(1) == y[n_train:]).float().mean())
            results.setdefault(name, []).append(acc)
            print(f"  {name:14s} seed {seed}: test accuracy {acc:.4f} ({time.time() - t1:.0f}s)")
    print(f"\n{'input':14s} {'accuracy (mean +- std over seeds)'}")
    for name, accs in results.items():
        print(f"{name:14s} {np.mean(accs):.4f} +- {np.std(accs):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
