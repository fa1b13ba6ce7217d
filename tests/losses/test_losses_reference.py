"""Every loss equals a naive Python-loop implementation written here, over seeds and dtypes."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from embedlab.losses import (
    ContrastiveLoss,
    EBVLoss,
    GeodesicMixupLoss,
    HydraLoss,
    ICNNLoss,
    InfoNCELoss,
    KaLMLoss,
    MatryoshkaLoss,
    MetrixLoss,
    MIMixLoss,
    MVDHELLoss,
    MVInfoNCELoss,
    ProtoTripletLoss,
    StarbucksLoss,
    SupConLoss,
    SupReMixLoss,
    TripletLoss,
)
from embedlab.losses.distances import CosineSimilarity
from embedlab.miners import SemiHardMiner

SEEDS = (0, 1, 2)
DTYPES = (torch.float32, torch.float64)
RTOL = {torch.float32: 1e-5, torch.float64: 1e-9}
ATOL = {torch.float32: 1e-6, torch.float64: 1e-12}

T = torch.Tensor


def data(
    seed: int, n: int = 12, dim: int = 6, classes: int = 3, dtype=torch.float64
) -> tuple[T, T]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64).to(dtype)
    y = torch.randint(0, classes, (n,), generator=gen)
    y[:classes] = torch.arange(classes)  # every class present
    y[classes : 2 * classes] = torch.arange(classes)  # ... at least twice
    return x, y


def unit(v: T) -> T:
    return v / math.sqrt(float((v.double() ** 2).sum()))


def dot(u: T, v: T) -> float:
    return float((u.double() * v.double()).sum())


def sqd(u: T, v: T) -> float:
    return float(((unit(u) - unit(v)) ** 2).sum())


def close(ours: T, ref: float, dtype: torch.dtype) -> None:
    assert ours.dtype == dtype
    assert float(ours) == pytest.approx(ref, rel=RTOL[dtype], abs=ATOL[dtype])


def lse(values: list[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def naive_supcon(x: T, y: T, t: float) -> float:
    n = len(y)
    z = [unit(x[i]) for i in range(n)]
    per = []
    for i in range(n):
        pos = [j for j in range(n) if j != i and y[j] == y[i]]
        if not pos:
            continue
        denom = lse([dot(z[i], z[a]) / t for a in range(n) if a != i])
        per.append(-sum(dot(z[i], z[p]) / t - denom for p in pos) / len(pos))
    return sum(per) / len(per)


params = pytest.mark.parametrize(("seed", "dtype"), list(itertools.product(SEEDS, DTYPES)))


@params
def test_triplet_all(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    n = len(y)
    losses = [
        max(0.0, sqd(x[a], x[p]) - sqd(x[a], x[k]) + 0.2)
        for a in range(n)
        for p in range(n)
        for k in range(n)
        if a != p and y[a] == y[p] and y[k] != y[a]
    ]
    close(TripletLoss(margin=0.2)(x, y), sum(losses) / len(losses), dtype)
    close(TripletLoss(margin=0.2, reduction="sum")(x, y), sum(losses), dtype)


@params
def test_triplet_semihard(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, n=20, dtype=dtype)
    x64 = x.double()
    n, m = len(y), 0.5
    losses = []
    for a, p, k in itertools.product(range(n), repeat=3):
        if a != p and y[a] == y[p] and y[k] != y[a]:
            dap, dan = sqd(x64[a], x64[p]), sqd(x64[a], x64[k])
            if dap < dan < dap + m:
                losses.append(dap - dan + m)
    ours = TripletLoss(margin=m, miner=SemiHardMiner(margin=m))(x, y)
    assert losses
    # float32 may flip a borderline triplet; compare in float64, sanity-check float32
    if dtype == torch.float64:
        close(ours, sum(losses) / len(losses), dtype)
    else:
        assert float(ours) == pytest.approx(sum(losses) / len(losses), rel=0.05)


@params
def test_contrastive(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    n = len(y)
    pos, neg = [], []
    for i, j in itertools.product(range(n), repeat=2):
        d = math.sqrt(sqd(x[i], x[j]))
        if i != j and y[i] == y[j]:
            pos.append(max(0.0, d - 0.1))
        elif y[i] != y[j]:
            neg.append(max(0.0, 1.2 - d))
    ours = ContrastiveLoss(pos_margin=0.1, neg_margin=1.2, reduction="mean")(x, y)
    close(ours, sum(pos) / len(pos) + sum(neg) / len(neg), dtype)
    cos = ContrastiveLoss(
        pos_margin=0.9, neg_margin=0.1, distance=CosineSimilarity(), reduction="mean"
    )(x, y)
    pos, neg = [], []
    for i, j in itertools.product(range(n), repeat=2):
        s = dot(unit(x[i]), unit(x[j]))
        if i != j and y[i] == y[j]:
            pos.append(max(0.0, 0.9 - s))
        elif y[i] != y[j]:
            neg.append(max(0.0, s - 0.1))
    close(cos, sum(pos) / len(pos) + sum(neg) / len(neg), dtype)


@params
def test_supcon(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    close(SupConLoss(temperature=0.1)(x, y), naive_supcon(x, y, 0.1), dtype)


@params
def test_infonce(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    n, t = len(y), 0.2
    z = [unit(x[i]) for i in range(n)]
    losses = []
    for i, p in itertools.product(range(n), repeat=2):
        if i != p and y[i] == y[p]:
            terms = [dot(z[i], z[p]) / t] + [dot(z[i], z[k]) / t for k in range(n) if y[k] != y[i]]
            losses.append(lse(terms) - dot(z[i], z[p]) / t)
    close(InfoNCELoss(temperature=t)(x, y), sum(losses) / len(losses), dtype)
    # without labels: two stacked views
    half = n // 2
    views = [i % half for i in range(n)]
    losses = []
    for i in range(n):
        p = (i + half) % n
        terms = [dot(z[i], z[p]) / t] + [
            dot(z[i], z[k]) / t for k in range(n) if views[k] != views[i]
        ]
        losses.append(lse(terms) - dot(z[i], z[p]) / t)
    close(InfoNCELoss(temperature=t)(x), sum(losses) / len(losses), dtype)


@params
def test_matryoshka(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dim=16, dtype=dtype)
    ours = MatryoshkaLoss(SupConLoss(temperature=0.2), dims=(4, 8, 16), weights=(1.0, 0.5, 2.0))
    ref = sum(w * naive_supcon(x[:, :d], y, 0.2) for d, w in ((4, 1.0), (8, 0.5), (16, 2.0)))
    close(ours(x, y), ref, dtype)


@params
def test_starbucks(seed: int, dtype: torch.dtype) -> None:
    layers = [data(seed + k, dim=16, dtype=dtype)[0] for k in range(3)]
    _, y = data(seed)
    ours = StarbucksLoss(SupConLoss(), pairs=((1, 4), (2, 16)))(layers, y)
    ref = (naive_supcon(layers[1][:, :4], y, 0.1) + naive_supcon(layers[2], y, 0.1)) / 2
    close(ours, ref, dtype)


@params
def test_metrix_contrastive(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    n = len(y)
    gen = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, n, (5, 2), generator=gen)
    lam = torch.rand(5, generator=gen, dtype=torch.float64)
    mixed = torch.randn(5, x.shape[1], generator=gen, dtype=torch.float64).to(dtype)
    base = ContrastiveLoss(pos_margin=0.0, neg_margin=1.0, reduction="mean")
    ours = MetrixLoss(base, weight=0.7)(x, y, mixed=mixed, pairs=pairs, lam=lam)
    clean = float(base(x, y))
    terms = []
    for i, m in itertools.product(range(n), range(5)):
        a, b = int(pairs[m, 0]), int(pairs[m, 1])
        if i in (a, b):
            continue
        t = float(lam[m]) * bool(y[i] == y[a]) + (1 - float(lam[m])) * bool(y[i] == y[b])
        d = math.sqrt(sqd(x[i], mixed[m]))
        terms.append(t * d + (1 - t) * max(0.0, 1.0 - d))
    close(ours, clean + 0.7 * sum(terms) / len(terms), dtype)


@params
def test_metrix_embedding_mixup_is_seeded(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    a = MetrixLoss("supcon", seed=seed)(x, y)
    b = MetrixLoss("supcon", seed=seed)(x, y)
    assert float(a) == float(b) and float(a) > float(SupConLoss()(x, y))


@params
def test_ebv(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    loss = EBVLoss(dim=x.shape[1], n_classes=3, temperature=0.5, seed=99)
    v = loss.vectors.double()
    ce = []
    for i in range(len(y)):
        logits = [dot(unit(x[i]), v[c]) / 0.5 for c in range(3)]
        ce.append(lse(logits) - logits[int(y[i])])
    close(loss(x, y), sum(ce) / len(ce), dtype)
    sph = EBVLoss(dim=x.shape[1], n_classes=3, objective="spherical", seed=99)
    ref = sum(math.acos(dot(unit(x[i]), v[int(y[i])])) for i in range(len(y))) / len(y)
    close(sph(x, y), ref, dtype)
    pred = loss.predict(x)
    for i in range(len(y)):
        assert int(pred[i]) == max(range(3), key=lambda c: dot(unit(x[i]), v[c]))


def test_ebv_vectors_near_orthogonal() -> None:
    v = EBVLoss(dim=32, n_classes=20, eps=0.05, seed=3).vectors
    cos = v @ v.T - torch.eye(20)
    assert float(cos.abs().max()) < 0.08  # measured 0.050
    assert torch.equal(v, EBVLoss(dim=32, n_classes=20, eps=0.05, seed=3).vectors)


def view_data(seed: int, dtype: torch.dtype, v: int = 3) -> T:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(6, v, 5, generator=gen, dtype=torch.float64).to(dtype)


@params
@pytest.mark.parametrize("n_views", [2, 4])
def test_mv_infonce(seed: int, dtype: torch.dtype, n_views: int) -> None:
    z = view_data(seed, dtype, n_views)
    b, v, t = z.shape[0], n_views, 0.2
    losses = []
    for i in range(b):
        pos = [dot(unit(z[i, u]), unit(z[i, m])) / t for u in range(v) for m in range(v) if u != m]
        neg = [
            dot(unit(z[i, u]), unit(z[j, m])) / t
            for u in range(v)
            for j in range(b)
            for m in range(v)
            if (j, m) != (i, u)
        ]
        losses.append(lse(neg) - lse(pos))
    close(MVInfoNCELoss()(z), sum(losses) / b, dtype)


@params
@pytest.mark.parametrize("n_views", [2, 4])
def test_mv_dhel(seed: int, dtype: torch.dtype, n_views: int) -> None:
    z = view_data(seed, dtype, n_views)
    b, v, t = z.shape[0], n_views, 0.2
    losses = []
    for i in range(b):
        pos = [dot(unit(z[i, u]), unit(z[i, m])) / t for u in range(v) for m in range(u + 1, v)]
        unif = sum(
            lse([dot(unit(z[i, u]), unit(z[j, u])) / t for j in range(b) if j != i])
            for u in range(v)
        )
        losses.append(unif - lse(pos))
    close(MVDHELLoss()(z), sum(losses) / b, dtype)
    # with labels, same-label instances leave the denominator
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    losses = []
    for i in range(b):
        pos = [dot(unit(z[i, u]), unit(z[i, m])) / t for u in range(v) for m in range(u + 1, v)]
        unif = sum(
            lse([dot(unit(z[i, u]), unit(z[j, u])) / t for j in range(b) if labels[j] != labels[i]])
            for u in range(v)
        )
        losses.append(unif - lse(pos))
    close(MVDHELLoss()(z, labels), sum(losses) / b, dtype)


@params
def test_proto_triplet(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    classes = sorted(set(y.tolist()))
    z = [unit(x[i]) for i in range(len(y))]
    protos = {
        c: sum(z[i] for i in range(len(y)) if y[i] == c) / int((y == c).sum()) for c in classes
    }
    losses = []
    for i in range(len(y)):
        own = float(((z[i] - protos[int(y[i])]) ** 2).sum())
        for c in classes:
            if c != int(y[i]):
                other = float(((z[i] - protos[c]) ** 2).sum())
                losses.append(max(0.0, own - other + 0.3))
    close(ProtoTripletLoss(margin=0.3)(x, y), sum(losses) / len(losses), dtype)


@params
def test_icnn(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    n, k = len(y), 2
    scores = []
    for i in range(n):
        intra = sorted(math.sqrt(sqd(x[i], x[j])) for j in range(n) if j != i and y[j] == y[i])[:k]
        inter = sorted(math.sqrt(sqd(x[i], x[j])) for j in range(n) if y[j] != y[i])[:k]
        a, b = sum(intra) / len(intra), sum(inter) / len(inter)
        scores.append(1 - b / (a + b))
    close(ICNNLoss(k=k)(x, y), sum(scores) / n, dtype)


@params
def test_supremix(seed: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(10, 5, generator=gen, dtype=torch.float64).to(dtype)
    y = torch.randint(0, 5, (10,), generator=gen).to(torch.float64)
    t, lam = 0.1, 0.3
    n = len(y)
    z = [unit(x[i]) for i in range(n)]
    losses = []
    for i in range(n):
        cand = [(dot(z[i], z[j]) / t, y[j] == y[i]) for j in range(n) if j != i]
        for j in range(n):
            if y[j] != y[i]:
                cand.append((dot(z[i], unit(lam * z[i] + (1 - lam) * z[j])) / t, False))
        lower = [j for j in range(n) if y[j] < y[i]]
        upper = [j for j in range(n) if y[j] > y[i]]
        if lower and upper:
            jl = max(lower, key=lambda j: (float(y[j]), -j))
            ku = min(upper, key=lambda j: (float(y[j]), j))
            w = float((y[ku] - y[i]) / (y[ku] - y[jl]))
            cand.append((dot(z[i], unit(w * z[jl] + (1 - w) * z[ku])) / t, True))
        pos = [c for c, is_pos in cand if is_pos]
        if pos:
            denom = lse([c for c, _ in cand])
            losses.append(-sum(c - denom for c in pos) / len(pos))
    close(
        SupReMixLoss(temperature=t, neg_lambda=lam)(x, y.to(dtype)),
        sum(losses) / len(losses),
        dtype,
    )


def naive_slerp(a: T, b: T, s: float) -> T:
    theta = math.acos(max(-1.0, min(1.0, dot(a, b))))
    if math.sin(theta) < 1e-4:
        return unit(s * a + (1 - s) * b)
    return unit(
        math.sin(s * theta) / math.sin(theta) * a + math.sin((1 - s) * theta) / math.sin(theta) * b
    )


@params
def test_geodesic_mixup(seed: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(6, 5, generator=gen, dtype=torch.float64).to(dtype)
    b = torch.randn(6, 5, generator=gen, dtype=torch.float64).to(dtype)
    t, lam, n = 0.1, 0.3, 6
    ua = [unit(a[i]) for i in range(n)]
    ub = [unit(b[i]) for i in range(n)]
    m = [naive_slerp(ua[i].double(), ub[i].double(), lam) for i in range(n)]
    clip = 0.0
    for i in range(n):
        row = [dot(ua[i], ub[j]) / t for j in range(n)]
        col = [dot(ua[j], ub[i]) / t for j in range(n)]
        clip += (lse(row) - row[i] + lse(col) - col[i]) / (2 * n)
    m2 = 0.0
    for x in (ua, ub):
        for i in range(n):
            p = dot(ua[i], ub[i]) / t
            terms = [p] + [dot(x[i], m[j]) / t for j in range(n) if j != i]
            m2 += (lse(terms) - p) / (2 * n)
    close(GeodesicMixupLoss(temperature=t, weight=0.5)(a, b, lam=lam), clip + 0.5 * m2, dtype)


def test_slerp_guarded_at_theta_zero() -> None:
    from embedlab.losses import slerp

    a = torch.nn.functional.normalize(torch.randn(4, 3, dtype=torch.float64), dim=1)
    a.requires_grad_(True)
    out = slerp(a, a, 0.3)
    out.sum().backward()
    assert torch.allclose(out, a) and torch.isfinite(a.grad).all()  # type: ignore[arg-type]
    b = torch.nn.functional.normalize(torch.randn(4, 3, dtype=torch.float64), dim=1)
    assert torch.allclose(slerp(a, b, 1.0), a) and torch.allclose(slerp(a, b, 0.0), b)


@params
def test_kalm(seed: int, dtype: torch.dtype) -> None:
    x, y = data(seed, dtype=dtype)
    n, t, gamma, n_mix, beta = len(y), 0.1, 2.0, 2, 0.6
    z = [unit(x[i]) for i in range(n)]
    losses = []
    for i, p in itertools.product(range(n), repeat=2):
        if i == p or y[i] != y[p]:
            continue
        negs = sorted((j for j in range(n) if y[j] != y[i]), key=lambda j: -dot(z[i], z[j]))
        mixed = [unit(beta * z[negs[r]] + (1 - beta) * z[negs[r + 1]]) for r in range(n_mix)]
        pos = dot(z[i], z[p]) / t
        terms = [pos] + [dot(z[i], z[j]) / t for j in negs] + [dot(z[i], mv) / t for mv in mixed]
        nll = lse(terms) - pos
        losses.append((1 - math.exp(-nll)) ** gamma * nll)
    ours = KaLMLoss(temperature=t, gamma=gamma, n_mix=n_mix, beta=beta)(x, y)
    close(ours, sum(losses) / len(losses), dtype)


@params
@pytest.mark.parametrize("rank", [None, 2])
def test_hydra(seed: int, dtype: torch.dtype, rank: int | None) -> None:
    x, y = data(seed, dtype=dtype)
    loss = HydraLoss(dim=x.shape[1], n_classes=3, rank=rank, seed=seed, temperature=0.2)
    with torch.no_grad():
        g = torch.sigmoid(loss.gate_logits().double())
    n = len(y)

    def gcos(i: int, j: int) -> float:
        gate = g[int(y[i]), int(y[j])]
        u, v = gate * unit(x[i]).double(), gate * unit(x[j]).double()
        return dot(u, v) / math.sqrt(dot(u, u) * dot(v, v))

    per = []
    for i in range(n):
        pos = [j for j in range(n) if j != i and y[j] == y[i]]
        denom = lse([gcos(i, a) / 0.2 for a in range(n) if a != i])
        per.append(-sum(gcos(i, p) / 0.2 - denom for p in pos) / len(pos))
    ref = sum(per) / n + 0.01 * float(g.mean())
    close(loss(x, y), ref, dtype)


@params
def test_mimix(seed: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(7, 5, generator=gen, dtype=torch.float64).to(dtype)
    b = torch.randn(7, 5, generator=gen, dtype=torch.float64).to(dtype)
    lam = torch.rand(7, generator=gen, dtype=torch.float64)
    perm = torch.randperm(7, generator=gen)
    t = 0.2
    losses = []
    for i in range(7):
        logits = [dot(unit(b[i]), unit(a[j])) / t for j in range(7)]
        z = lse(logits)
        j = int(perm[i])
        losses.append(-(float(lam[i]) * (logits[i] - z) + (1 - float(lam[i])) * (logits[j] - z)))
    close(MIMixLoss(temperature=t)(a, b, lam=lam, perm=perm), sum(losses) / 7, dtype)


def test_mix_hidden_is_seeded_and_mixes() -> None:
    from embedlab.losses import mix_hidden

    h = torch.randn(6, 4, 3)
    m1, lam1, perm1 = mix_hidden(h, generator=torch.Generator().manual_seed(0))
    m2, lam2, perm2 = mix_hidden(h, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m1, m2) and torch.equal(lam1, lam2) and torch.equal(perm1, perm2)
    assert bool((perm1 != torch.arange(6)).all()) and bool(((lam1 > 0) & (lam1 < 1)).all())
    lam_b = lam1.view(6, 1, 1)
    assert torch.allclose(m1, lam_b * h + (1 - lam_b) * h[perm1])
