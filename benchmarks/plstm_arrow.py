"""Arrow-pointing extrapolation (pLSTM paper): train at 16x16, test at 16x16 and 32x32.

Pöppel et al. (2025) draw an arrow and a circle; the label says whether the arrow points at
the circle (the ray from the arrow head crosses it), half the samples positive. Models are
trained at one image size and tested at twice the size, with the *same object sizes in
pixels*, so at test time arrow and target are further apart than ever seen in training.
The paper uses 192 -> 384 pixel images and 100k training samples; this is a CPU-small
version: 16 -> 32 pixels, a few thousand samples, arrow and target in separate channels.

Two models of about equal size share the patch embedding (2x2 patches), block layout
(pre-norm mixer + MLP, residuals), mean pooling and head; only the mixer differs:
- ``plstm``: :class:`embedlab.layers.PLSTM2D` (4 directions x 2 heads), no position embedding;
- ``vit``: multi-head self-attention with a learned position embedding, bilinearly
  interpolated to the larger grid at test time (the usual ViT practice).

Usage:
    python benchmarks/plstm_arrow.py [--train 4000] [--test 1000] [--epochs 10]
        [--dim 32] [--depth 2] [--seeds 0] [--models plstm,vit]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

SUPERSAMPLE = 4


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.asarray(np.linalg.norm(p - (a + t[:, None] * ab), axis=1))


def _ray_miss(c: np.ndarray, head: np.ndarray, direction: np.ndarray) -> float:
    """Distance from ``c`` to the ray leaving ``head`` along ``direction`` (unit)."""
    t = max(0.0, float((c - head) @ direction))
    return float(np.linalg.norm(c - (head + t * direction)))


def make_arrows(
    n: int,
    size: int,
    seed: int,
    *,
    length: tuple[float, float] = (5.0, 7.0),
    radius: tuple[float, float] = (1.5, 2.5),
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, 2, size, size)`` (channel 0 arrow, 1 target) and labels ``(n,)``.

    Object sizes are in pixels, independent of ``size``. Label 1: the ray from the arrow
    head passes within ``0.7 r`` of the target centre; label 0: it misses by ``> r + 1``.
    """
    rng = np.random.default_rng(seed)
    sub = (np.arange(size * SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    grid = np.stack(np.meshgrid(sub, sub, indexing="ij"), -1).reshape(-1, 2)
    images = np.zeros((n, 2, size, size), dtype=np.float32)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    pad = 1.0
    for i in range(n):
        while True:
            ell = rng.uniform(*length)
            r = rng.uniform(*radius)
            theta = rng.uniform(0, 2 * math.pi)
            direction = np.array([math.cos(theta), math.sin(theta)])
            tail = rng.uniform(pad, size - pad, 2)
            head = tail + ell * direction
            if not ((head > pad) & (head < size - pad)).all():
                continue
            if labels[i] == 1:  # centre on the ray, a little off-axis
                room = _room_along(head, direction, size, pad + r)
                if room < r + 2.0:
                    continue
                t = rng.uniform(r + 2.0, room)
                normal = np.array([-direction[1], direction[0]])
                c = head + t * direction + rng.uniform(-0.7, 0.7) * r * normal
            else:
                c = rng.uniform(pad + r, size - pad - r, 2)
                if _ray_miss(c, head, direction) <= r + 1.0:
                    continue
            if not ((c > pad + r - 1e-9) & (c < size - pad - r + 1e-9)).all():
                continue
            if _segment_distance(c[None], tail, head)[0] < r + 1.5:
                continue
            break
        images[i, 0] = _render_arrow(grid, tail, head, direction, size)
        inside = np.linalg.norm(grid - c, axis=1) <= r
        images[i, 1] = _pool(inside, size)
    return images, labels


def _room_along(head: np.ndarray, direction: np.ndarray, size: int, margin: float) -> float:
    """How far one can go from ``head`` along ``direction`` and stay ``margin`` inside."""
    room = math.inf
    for axis in range(2):
        if direction[axis] > 1e-9:
            room = min(room, (size - margin - head[axis]) / direction[axis])
        elif direction[axis] < -1e-9:
            room = min(room, (margin - head[axis]) / direction[axis])
    return max(0.0, room)


def _render_arrow(
    grid: np.ndarray, tail: np.ndarray, head: np.ndarray, direction: np.ndarray, size: int
) -> np.ndarray:
    shaft = _segment_distance(grid, tail, head) <= 0.5
    normal = np.array([-direction[1], direction[0]])
    # head: a triangle with its tip at ``head``, 2.5 px long and 3 px wide
    rel = grid - head
    along, across = -(rel @ direction), rel @ normal
    tip = (along >= 0) & (along <= 2.5) & (np.abs(across) <= 1.5 * along / 2.5)
    return _pool(shaft | tip, size)


def _pool(mask: np.ndarray, size: int) -> np.ndarray:
    m = mask.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).astype(np.float32)
    return np.asarray(m.mean(axis=(1, 3)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--models", default="plstm,vit")
    parser.add_argument(
        "--vit-mlp-ratio", type=float, default=2.0, help="ViT MLP width / dim (2.8: ~pLSTM size)"
    )
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F
    from torch import nn

    from embedlab.layers import PLSTM2D

    torch.set_num_threads(1)
    t0 = time.time()
    x_train, y_train = make_arrows(args.train, args.size, seed=1)
    tests = {
        f"{s}x{s}": make_arrows(args.test, s, seed=100 + s) for s in (args.size, 2 * args.size)
    }
    print(
        f"arrow pointing: {args.train} train at {args.size}x{args.size}, {args.test} test per "
        f"size; generated in {time.time() - t0:.1f}s"
    )

    class Mixer(nn.Module):
        def __init__(self, kind: str, dim: int, grid: int) -> None:
            super().__init__()
            self.kind = kind
            if kind == "plstm":
                self.plstm = PLSTM2D(dim, heads=2, head_dim=4, directions=4)
            else:
                self.attn = nn.MultiheadAttention(dim, 4, batch_first=True)

        def forward(self, h: torch.Tensor) -> torch.Tensor:  # (b, X, Y, d)
            if self.kind == "plstm":
                out: torch.Tensor = self.plstm(h)
                return out
            b, nx, ny, d = h.shape
            flat = h.reshape(b, nx * ny, d)
            return self.attn(flat, flat, flat, need_weights=False)[0].reshape(b, nx, ny, d)

    class Net(nn.Module):
        def __init__(self, kind: str, dim: int, depth: int, grid: int) -> None:
            super().__init__()
            self.kind = kind
            self.embed = nn.Conv2d(2, dim, 2, stride=2)
            self.pos = nn.Parameter(torch.zeros(1, dim, grid, grid)) if kind == "vit" else None
            if self.pos is not None:
                nn.init.normal_(self.pos, std=0.02)
            self.norms1 = nn.ModuleList(nn.LayerNorm(dim) for _ in range(depth))
            self.mixers = nn.ModuleList(Mixer(kind, dim, grid) for _ in range(depth))
            self.norms2 = nn.ModuleList(nn.LayerNorm(dim) for _ in range(depth))
            hidden = int(args.vit_mlp_ratio * dim) if kind == "vit" else 2 * dim
            self.mlps = nn.ModuleList(
                nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
                for _ in range(depth)
            )
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.embed(x)  # (b, d, X, Y)
            if self.pos is not None:
                pos = self.pos
                if pos.shape[-2:] != h.shape[-2:]:
                    pos = F.interpolate(pos, size=h.shape[-2:], mode="bilinear")
                h = h + pos
            h = h.permute(0, 2, 3, 1)
            for n1, mix, n2, mlp in zip(
                self.norms1, self.mixers, self.norms2, self.mlps, strict=True
            ):
                h = h + mix(n1(h))
                h = h + mlp(n2(h))
            return self.head(self.norm(h).mean(dim=(1, 2)))

    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    results: dict[str, dict[str, list[float]]] = {}
    for kind in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            torch.manual_seed(seed)
            model = Net(kind, args.dim, args.depth, args.size // 2)
            n_params = sum(p.numel() for p in model.parameters())
            opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
            steps = args.epochs * math.ceil(args.train / 64)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps)
            gen = torch.Generator().manual_seed(seed)
            t1 = time.time()
            for _ in range(args.epochs):
                model.train()
                order = torch.randperm(args.train, generator=gen)
                for start in range(0, args.train, 64):
                    batch = order[start : start + 64]
                    loss = F.cross_entropy(model(xt[batch]), yt[batch])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
            train_s = time.time() - t1
            model.eval()
            line = f"  {kind:5s} seed {seed}: {n_params} params, trained {train_s:.0f}s"
            for name, (xs, ys) in tests.items():
                correct = 0
                with torch.no_grad():
                    for start in range(0, len(ys), 100):
                        logits = model(torch.from_numpy(xs[start : start + 100]))
                        correct += int((logits.argmax(1).numpy() == ys[start : start + 100]).sum())
                acc = correct / len(ys)
                results.setdefault(kind, {}).setdefault(name, []).append(acc)
                line += f", acc@{name} {acc:.4f}"
            print(line, flush=True)
    sizes = list(tests)
    print(f"\n{'model':6s} " + " ".join(f"{'acc@' + s:>18s}" for s in sizes))
    for kind, per in results.items():
        cells = [f"{np.mean(per[s]):.4f} +- {np.std(per[s]):.4f}" for s in sizes]
        print(f"{kind:6s} " + " ".join(f"{c:>18s}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
