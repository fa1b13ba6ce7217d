"""Random-subspace training (Li et al. 2018) and SAID (Aghajanyan et al. 2021)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from embedlab.analysis.subspace import (
    DenseProjection,
    FastfoodProjection,
    Projection,
    SparseProjection,
    SubspaceModel,
    fast_walsh_hadamard,
    make_projection,
)
from embedlab.analysis.subspace_sweep import intrinsic_dimension_sweep, train_full, train_subspace
from embedlab.data import load_digits


def mlp(n_in: int = 6, hidden: int = 8, n_out: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 6 * 6, 4),
    )


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These tiny models are dominated by per-op overhead; extra threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def explicit(proj: Projection) -> torch.Tensor:
    """``(D, d)``: the projection applied to each basis vector of R^d."""
    eye = torch.eye(proj.d, dtype=torch.float64)
    return torch.stack([proj(eye[j]) for j in range(proj.d)], dim=1)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 32, 256])
def test_fwht_equals_scipy_hadamard(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(3, n))
    h = scipy.linalg.hadamard(n).astype(np.float64)
    np.testing.assert_allclose(fast_walsh_hadamard(torch.eye(n, dtype=torch.float64)).numpy(), h)
    got = fast_walsh_hadamard(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, x @ h.T, rtol=1e-12, atol=1e-10)


def test_fwht_gradient_and_bad_length() -> None:
    x = torch.randn(2, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fast_walsh_hadamard, (x,))
    with pytest.raises(ValueError, match="power-of-two length, got 12"):
        fast_walsh_hadamard(torch.zeros(12))


@pytest.mark.parametrize("kind", ["dense", "sparse", "fastfood"])
@pytest.mark.parametrize("seed", [0, 1])
def test_projection_is_linear_with_unit_columns(kind: str, seed: int) -> None:
    n_params, d = 300, 12
    proj = make_projection(kind, n_params, d, seed=seed).double()
    mat = explicit(proj)
    assert mat.shape == (n_params, d)
    gen = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(d, generator=gen, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(proj(2.0 * a - 3.0 * b), 2.0 * proj(a) - 3.0 * proj(b))
    torch.testing.assert_close(proj(a), mat @ a)
    norms = torch.linalg.vector_norm(mat, dim=0)
    # dense and sparse are normalised exactly; fastfood's norms measured
    # in [0.95, 1.08] for D=300, L=512 (seeds 0, 1)
    tol = 1e-6 if kind != "fastfood" else 0.15
    assert torch.all((norms - 1.0).abs() < tol), norms
    assert torch.equal(mat, explicit(make_projection(kind, n_params, d, seed=seed).double()))
    assert not torch.equal(
        mat, explicit(make_projection(kind, n_params, d, seed=seed + 7).double())
    )


def test_fastfood_matches_explicit_formula() -> None:
    n_params, d = 100, 9
    proj = FastfoodProjection(n_params, d, seed=3).double()
    n = proj.length
    assert n == 128
    h = scipy.linalg.hadamard(n).astype(np.float64)
    perm = np.zeros((n, n))
    perm[np.arange(n), proj.perm.numpy()] = 1.0  # (Pi x)_i = x[perm[i]]
    g = proj.gaussian.numpy()
    full = h @ np.diag(g) @ perm @ h @ np.diag(proj.signs.numpy())
    want = full[:n_params, :d] / np.sqrt(n_params * np.sum(g**2))
    np.testing.assert_allclose(explicit(proj).numpy(), want, rtol=1e-10, atol=1e-12)
    # the full L x L matrix has columns of length exactly sqrt(L / D)
    np.testing.assert_allclose(
        np.linalg.norm(full / np.sqrt(n_params * np.sum(g**2)), axis=0), np.sqrt(n / n_params)
    )


def test_dense_chunked_equals_stored_and_backward() -> None:
    stored = DenseProjection(9000, 5, seed=2)  # 3 blocks of 4096 rows
    chunked = DenseProjection(9000, 5, seed=2, max_bytes=0)
    assert stored.weight is not None and chunked.weight is None
    assert chunked.memory_bytes() == 5 * 4
    theta = torch.randn(5, requires_grad=True)
    torch.testing.assert_close(chunked(theta), stored.weight @ theta, rtol=1e-5, atol=1e-5)
    w = torch.randn(9000)
    (chunked(theta) @ w).backward()
    assert theta.grad is not None
    torch.testing.assert_close(theta.grad, stored.weight.T @ w, rtol=1e-4, atol=1e-4)


def test_sparse_density() -> None:
    n_params, d = 40_000, 20
    proj = SparseProjection(n_params, d, seed=0)
    nnz = proj.matrix._nnz()
    expected = d * np.sqrt(n_params)  # density 1 / sqrt(D): 200 per column
    assert abs(nnz - expected) < 0.1 * expected  # measured 3,992 of 4,000 expected
    assert proj.matrix.is_sparse


@pytest.mark.parametrize("kind", ["dense", "sparse", "fastfood"])
@pytest.mark.parametrize("factory", [mlp, small_cnn])
def test_zero_theta_gives_original_outputs(kind: str, factory: type[nn.Module]) -> None:
    torch.manual_seed(0)
    net = factory().eval()
    x = torch.rand(5, 6) if factory is mlp else torch.rand(5, 1, 8, 8)
    before = net(x)
    sub = SubspaceModel(net, 7, projection=kind, seed=1).eval()  # type: ignore[arg-type]
    assert torch.equal(sub(x), before)
    assert torch.equal(SubspaceModel(net, 7, projection=kind, said=True).eval()(x), before)  # type: ignore[arg-type]


@pytest.mark.parametrize("factory", [mlp, small_cnn])
def test_gradients_reach_theta_d_only(factory: type[nn.Module]) -> None:
    torch.manual_seed(0)
    net = factory()
    originals = [p.detach().clone() for p in net.parameters()]
    sub = SubspaceModel(net, 4, projection="fastfood")
    trainable = [name for name, p in sub.named_parameters() if p.requires_grad]
    assert trainable == ["theta_d"]
    x = torch.rand(6, 6) if factory is mlp else torch.rand(6, 1, 8, 8)
    opt = torch.optim.SGD([sub.theta_d], lr=0.1)
    sub(x).square().sum().backward()
    assert sub.theta_d.grad is not None and float(sub.theta_d.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.parameters())
    opt.step()
    for p, q in zip(net.parameters(), originals, strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(sub.theta(), sub.theta0)


def test_said_adds_one_scalar_per_parameter_tensor() -> None:
    net = small_cnn()  # conv w, conv b, bn w, bn b, linear w, linear b
    sub = SubspaceModel(net, 10, projection="sparse", said=True)
    assert sub.layer_scales is not None and sub.layer_scales.shape == (6,)
    assert sub.n_trainable == 16
    trainable = {name: p.numel() for name, p in sub.named_parameters() if p.requires_grad}
    assert trainable == {"theta_d": 10, "layer_scales": 6}
    with torch.no_grad():
        sub.theta_d.normal_()
        sub.layer_scales.copy_(torch.arange(6.0))
    delta = sub.theta() - sub.theta0
    plain = sub.projection(sub.theta_d)
    sizes = [p.numel() for p in net.parameters()]
    for i, (got, raw) in enumerate(zip(delta.split(sizes), plain.split(sizes), strict=True)):
        torch.testing.assert_close(got, i * raw)
    assert SubspaceModel(net, 10).n_trainable == 10


def _blobs(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(3, 6))
    y = rng.integers(0, 3, size=n)
    return (centres[y] + rng.normal(size=(n, 6))).astype(np.float32), y


def test_full_dimension_dense_fits_like_full_model() -> None:
    data = _blobs(0)
    d_full = sum(p.numel() for p in mlp().parameters())  # 6*8+8 + 8*3+3 = 83
    kw = {"epochs": 30, "batch_size": 32, "seed": 0}
    full = train_full(mlp, data, data, lr=0.01, **kw)  # type: ignore[arg-type]
    sub = train_subspace(mlp, d_full, data, data, projection="dense", lr=0.01, **kw)  # type: ignore[arg-type]
    assert full >= 0.95 and sub >= full - 0.02  # measured 1.0 and 1.0


def test_same_seed_same_result() -> None:
    data = _blobs(1, n=60)
    kw = {"projection": "fastfood", "epochs": 2, "batch_size": 16}
    a = train_subspace(mlp, 5, data, data, seed=3, **kw)  # type: ignore[arg-type]
    assert a == train_subspace(mlp, 5, data, data, seed=3, **kw)  # type: ignore[arg-type]


def test_bad_input_messages() -> None:
    net = mlp()  # D = 83
    with pytest.raises(ValueError, match="d must be >= 1, got 0"):
        SubspaceModel(net, 0)
    with pytest.raises(ValueError, match=r"d must be <= 83 \(D, the number of parameters"):
        SubspaceModel(net, 84)
    with pytest.raises(ValueError, match="projection must be one of dense, fastfood, sparse"):
        SubspaceModel(net, 3, projection="gaussian")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="projection must map d=3 to D=83"):
        SubspaceModel(net, 3, projection=DenseProjection(83, 4))
    with pytest.raises(ValueError, match="parameter count of module must be >= 1, got 0"):
        SubspaceModel(nn.ReLU(), 1)
    x, y = _blobs(0, n=20)
    x[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"train x must be finite.*\(4, 2\)"):
        train_subspace(mlp, 3, (x, y), _blobs(1, n=20))
    with pytest.raises(ValueError, match=r"d must be <= 83"):
        intrinsic_dimension_sweep(mlp, _blobs(0), _blobs(1), dims=[2, 100], progress=False)
    with pytest.raises(ValueError, match="train y must be in"):
        train_subspace(mlp, 3, (_blobs(0)[0], _blobs(0)[1] + 5), _blobs(1), epochs=1)
    with pytest.raises(ValueError, match="threshold must be in"):
        intrinsic_dimension_sweep(mlp, _blobs(0), _blobs(1), dims=[2], threshold=1.5)


def test_sweep_on_digits_finds_monotone_d_int90() -> None:
    data = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data))
    x = data.flat()
    train = (x[order[:1200]], data.y[order[:1200]])
    valid = (x[order[1200:]], data.y[order[1200:]])

    def factory() -> nn.Module:
        return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))  # D = 2,410

    result = intrinsic_dimension_sweep(
        factory,
        train,
        valid,
        dims=[250, 10, 50, 1000, 50],
        projection="fastfood",
        epochs=6,
        lr=0.2,
        baseline_lr=0.01,
        batch_size=64,
        progress=False,
    )
    acc = result.accuracies
    assert result.dims == (10, 50, 250, 1000) and result.n_params == 2410
    assert result.baseline > 0.9  # measured 0.938
    assert acc[-1] > acc[0] + 0.5  # measured 0.226, 0.573, 0.930, 0.941
    assert sum(b < a - 0.01 for a, b in itertools.pairwise(acc)) <= 1
    assert result.d_int90 is not None and result.d_int90 == 250  # target 0.844
    i = result.dims.index(result.d_int90)
    assert acc[i] >= 0.9 * result.baseline and all(a < 0.9 * result.baseline for a in acc[:i])
    assert result.d_int(0.5) <= result.d_int90 <= (result.d_int(0.97) or 10**9)  # type: ignore[operator]
    assert result.to_dict()["d_int90"] == result.d_int90
