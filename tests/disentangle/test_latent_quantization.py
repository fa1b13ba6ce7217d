"""The per-dimension scalar quantizer: codebook membership, straight-through gradients,
losses, errors."""

from __future__ import annotations

import pytest
import torch

from embedlab.disentangle import LatentQuantizer, commitment_loss, quantization_loss


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_output_lies_in_each_dimensions_codebook(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    q = LatentQuantizer(4, n_values=6)
    with torch.no_grad():  # distinct codebooks per dimension
        q.values.copy_(torch.randn(4, 6, generator=gen))
    z = 2 * torch.randn(50, 4, generator=gen)
    out = q(z)
    for j in range(4):
        book = q.values[j].detach()
        assert torch.equal(out.quantized[:, j].detach(), book[out.indices[:, j]])
        assert torch.isin(out.hat[:, j].detach(), book).all()
        # nearest value: a naive loop over the codebook
        for b in range(50):
            best = min(range(6), key=lambda k: abs(float(z[b, j]) - float(book[k])))
            assert int(out.indices[b, j]) == best


def test_straight_through_gradient_is_identity() -> None:
    q = LatentQuantizer(3, n_values=5)
    z = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    out = q(z)
    upstream = torch.randn(7, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out.hat * upstream).sum(), z)
    assert torch.equal(grad, upstream)
    # the full Jacobian of hat w.r.t. z is the identity
    jac = torch.autograd.functional.jacobian(lambda t: q(t).hat, z.detach())
    assert torch.equal(jac.reshape(21, 21), torch.eye(21, dtype=torch.float64))


def test_gradcheck_where_it_applies() -> None:
    """gradcheck cannot check ``hat`` itself (its value is piecewise constant in ``z``, the
    straight-through gradient is the identity by design; checked above). It does apply to
    the parts that are differentiable: the codebook lookup w.r.t. the values and both
    auxiliary losses (away from ties, the chosen indices do not move under eps)."""
    q = LatentQuantizer(2, n_values=4).double()
    z = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)

    def lookup(values: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            q.values.copy_(values.detach())
        idx = q(z.detach()).indices
        return values.unsqueeze(0).expand(5, -1, -1).gather(-1, idx.unsqueeze(-1)).squeeze(-1)

    values = q.values.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lookup, (values,))
    assert torch.autograd.gradcheck(lambda t: commitment_loss(q(t)), (z,))
    assert torch.autograd.gradcheck(lambda v: ((z.detach() - lookup(v)) ** 2).mean(), (values,))


def test_losses_route_gradients() -> None:
    q = LatentQuantizer(2, n_values=3)
    z = torch.tensor([[0.3, -0.1], [0.05, 0.4]], requires_grad=True)
    out = q(z)
    quantization_loss(out).backward()
    assert z.grad is None or torch.count_nonzero(z.grad) == 0
    assert q.values.grad is not None and torch.count_nonzero(q.values.grad) > 0
    q.values.grad = None
    z2 = z.detach().clone().requires_grad_(True)
    commitment_loss(q(z2)).backward()
    assert q.values.grad is None or torch.count_nonzero(q.values.grad) == 0
    expected = 2 * (z2.detach() - q(z2).quantized.detach()) / z2.numel()
    assert torch.allclose(z2.grad, expected)


def test_codebook_init_and_fixed_values() -> None:
    q = LatentQuantizer(2, n_values=3, optimize_values=False)
    assert torch.allclose(q.codebook(), torch.tensor([[-0.5, 0.0, 0.5]] * 2))
    assert not q.values.requires_grad


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="n_values must be >= 2, got 1"):
        LatentQuantizer(3, n_values=1)
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 3\)"):
        LatentQuantizer(3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="z must be finite"):
        LatentQuantizer(3)(torch.tensor([[0.0, float("nan"), 1.0]]))
