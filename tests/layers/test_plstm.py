"""pLSTM: the parallel form equals the cell-by-cell recurrence."""

from __future__ import annotations

import pytest
import torch

from embedlab.layers import PLSTM2D, PLSTMGates, gating_matrix, plstm2d_parallel, plstm2d_recurrent


def random_inputs(
    seed: int, b: int, x: int, y: int, h: int, dk: int = 3, dv: int = 4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PLSTMGates]:
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    gates = PLSTMGates(
        *(torch.rand(b, x, y, h, generator=gen, dtype=torch.float64) for _ in range(9))
    )
    return rand(b, x, y, h, dk), rand(b, x, y, h, dk), rand(b, x, y, h, dv), gates


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("x", "y"), [(1, 1), (1, 4), (4, 1), (3, 5), (4, 4), (6, 2)])
def test_parallel_equals_recurrence(seed: int, x: int, y: int) -> None:
    q, k, v, gates = random_inputs(seed, 2, x, y, 3)
    par = plstm2d_parallel(q, k, v, gates)
    rec = plstm2d_recurrent(q, k, v, gates)
    assert par.shape == (2, x, y, 3, 4)
    torch.testing.assert_close(par, rec, atol=1e-12, rtol=1e-12)


def test_gating_matrix_paths_by_hand() -> None:
    # 1 x 3 row: source at cell 0 reaches the mark of cell 2 through the down-edge chain
    # y=0 -> y=1 -> y=2: G[2, 0] = m_u[2] * t_du[1] * s_d[0]
    g = random_inputs(5, 1, 1, 3, 1)[3]
    gm = gating_matrix(g)[0, 0]
    s_d, t_du, m_u, d = (t[0, 0, :, 0] for t in (g.s_d, g.t_du, g.m_u, g.d))
    torch.testing.assert_close(gm[2, 0], m_u[2] * t_du[1] * s_d[0])
    torch.testing.assert_close(gm.diagonal(), d)
    assert float(gm.triu(1).abs().max()) == 0.0  # nothing flows back up the chain
    # 2 x 2: two paths from (0,0) to the mark of (1,1): right then down, down then right
    g = random_inputs(6, 1, 2, 2, 1)[3]
    gm = gating_matrix(g)[0, 0]

    def at(t: torch.Tensor, x: int, y: int) -> torch.Tensor:
        return t[0, x, y, 0]

    via_10 = at(g.m_u, 1, 1) * at(g.t_dl, 1, 0) * at(g.s_r, 0, 0)  # right into (1,0), then down
    via_01 = at(g.m_l, 1, 1) * at(g.t_ru, 0, 1) * at(g.s_d, 0, 0)  # down into (0,1), then right
    torch.testing.assert_close(gm[3, 0], via_10 + via_01)


def test_float32_parallel_close_to_recurrence_and_gradients_agree() -> None:
    q, k, v, gates = random_inputs(3, 2, 5, 4, 2)
    q32 = q.float().requires_grad_()
    args = (k.float(), v.float(), PLSTMGates(*(t.float() for t in gates)))
    par = plstm2d_parallel(q32, *args)
    (grad_par,) = torch.autograd.grad(par.square().sum(), q32)
    rec = plstm2d_recurrent(q32, *args)
    (grad_rec,) = torch.autograd.grad(rec.square().sum(), q32)
    torch.testing.assert_close(par, rec, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_par, grad_rec, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("directions", [1, 4])
def test_layer_parallel_equals_recurrent_layer(directions: int) -> None:
    torch.manual_seed(0)
    layer = PLSTM2D(8, heads=2, directions=directions).double()
    rec = PLSTM2D(8, heads=2, directions=directions, parallel=False).double()
    rec.load_state_dict(layer.state_dict())
    x = torch.randn(2, 4, 3, 8, dtype=torch.float64)
    torch.testing.assert_close(layer(x), rec(x), atol=1e-10, rtol=1e-10)


def test_four_directions_see_the_whole_grid() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 4, 8, requires_grad=True)
    for directions, reaches_back in ((1, False), (4, True)):
        out = PLSTM2D(8, directions=directions)(x)
        (grad,) = torch.autograd.grad(out[0, 0, 0].sum(), x)
        # the top-left cell's output depends on the bottom-right cell only with 4 directions
        assert bool(grad[0, 3, 3].abs().sum() > 0) is reaches_back


def test_layer_gates_keep_long_range_paths_bounded() -> None:
    layer = PLSTM2D(8, heads=1, directions=1)
    x = torch.randn(1, 12, 12, 8)
    with torch.no_grad():
        b, nx, ny, _ = x.shape
        raw = torch.sigmoid(layer.gate_proj(x).view(b, nx, ny, 9, 1)).unbind(3)
        s_r, s_d, f_r, a_r, f_d, a_d, m_l, m_u, d = raw
        g = PLSTMGates(
            s_r, s_d, f_r * a_r, f_r * (1 - a_r), f_d * a_d, f_d * (1 - a_d), m_l, m_u, d
        )
        gm = gating_matrix(g)
    assert float(gm.max()) <= 1.0 + 1e-6  # the mass of one source never grows along paths
    assert float(gm[0, 0, -1, 0]) > 1e-6  # but it reaches the far corner


def test_grids_of_unequal_size_are_rejected() -> None:
    q, k, v, gates = random_inputs(0, 1, 3, 4, 2)
    with pytest.raises(ValueError, match=r"v must be on the same grid as q"):
        plstm2d_parallel(q, k, v[:, :, :3], gates)
    with pytest.raises(ValueError, match=r"k must have the shape of q"):
        plstm2d_recurrent(q, k[:, :2], v, gates)
    bad = gates._replace(t_ru=gates.t_ru[:, :, :3])
    with pytest.raises(ValueError, match=r"gate t_ru must be on the grid of q"):
        plstm2d_parallel(q, k, v, bad)
    with pytest.raises(ValueError, match=r"q must be a 5-D tensor"):
        plstm2d_parallel(q[0], k, v, gates)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, X, Y, 8\)"):
        PLSTM2D(8)(torch.randn(2, 4, 4, 6))
    with pytest.raises(ValueError, match="directions must be one of 1, 4"):
        PLSTM2D(8, directions=2)
