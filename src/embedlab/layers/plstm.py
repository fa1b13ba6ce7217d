"""2-D pLSTM: a linear source-transition-mark recurrence on a grid and its parallel form.

Pöppel et al., "pLSTM: parallelizable Linear Source Transition Mark networks" (2025). On a
2-D grid every cell ``(x, y)`` has two incoming edges (from the left ``(x-1, y)`` and from
above ``(x, y-1)``) and two outgoing edges (right, down). Matrix-valued states live on the
outgoing edges (scalar transitions, per head)::

    C_r[x,y] = T_rl C_r[x-1,y] + T_ru C_d[x,y-1] + S_r k v^T
    C_d[x,y] = T_du C_d[x,y-1] + T_dl C_r[x-1,y] + S_d k v^T
    h[x,y]   = scale * q^T (M_l C_r[x-1,y] + M_u C_d[x,y-1] + D k v^T)

(all gates at ``(x, y)``). Unrolled, ``h[x,y] = scale * sum_(x',y') G[xy, x'y'] (q_xy .
k_x'y') v_x'y'``: the gating matrix ``G`` sums, over every path of the line graph from the
source at ``(x', y')`` to the mark at ``(x, y)``, the product of the transitions on it (plus
``D`` on the diagonal). :func:`plstm2d_parallel` builds ``G`` and applies it like masked
attention; :func:`plstm2d_recurrent` runs the recurrence cell by cell (the reference).

The paper builds ``G`` with a log-depth hierarchical doubling; here ``G`` is built by a
wavefront over the ``X + Y - 1`` anti-diagonals, each step vectorised over all cells of
the diagonal and all sources. Only scalar transitions and the directed propagation mode
(P-mode) are implemented, not the diffusive D-mode.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from embedlab._validation import check_choice, check_int

__all__ = ["PLSTM2D", "PLSTMGates", "gating_matrix", "plstm2d_parallel", "plstm2d_recurrent"]


class PLSTMGates(NamedTuple):
    """Scalar gates of a 2-D pLSTM, each ``(batch, X, Y, heads)``.

    ``s_r, s_d`` source into the right / down state; ``t_rl, t_ru`` carry the left / upper
    incoming state into the right state, ``t_du, t_dl`` the upper / left one into the down
    state; ``m_l, m_u`` mark the left / upper incoming state into the output; ``d`` is the
    direct (diagonal) term.
    """

    s_r: torch.Tensor
    s_d: torch.Tensor
    t_rl: torch.Tensor
    t_ru: torch.Tensor
    t_du: torch.Tensor
    t_dl: torch.Tensor
    m_l: torch.Tensor
    m_u: torch.Tensor
    d: torch.Tensor


def _check_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gates: PLSTMGates
) -> tuple[int, int, int, int]:
    """All grids must agree: q, k ``(B, X, Y, H, dk)``, v ``(B, X, Y, H, dv)``, gates
    ``(B, X, Y, H)``; returns ``(B, X, Y, H)``."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.ndim != 5:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 5-D tensor (batch, X, Y, heads, dim), got {shape}")
    b, x, y, h, _ = q.shape
    if tuple(k.shape) != tuple(q.shape):
        raise ValueError(f"k must have the shape of q {tuple(q.shape)}, got {tuple(k.shape)}")
    if tuple(v.shape[:4]) != (b, x, y, h):
        raise ValueError(
            f"v must be on the same grid as q (batch, X, Y, heads) = {(b, x, y, h)}, "
            f"got {tuple(v.shape[:4])}"
        )
    for name, g in zip(PLSTMGates._fields, gates, strict=True):
        if tuple(g.shape) != (b, x, y, h):
            raise ValueError(
                f"gate {name} must be on the grid of q (batch, X, Y, heads) = {(b, x, y, h)}, "
                f"got {tuple(g.shape)}"
            )
    return b, x, y, h


def plstm2d_recurrent(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gates: PLSTMGates
) -> torch.Tensor:
    """The pLSTM recurrence run cell by cell (row-major), ``O(X Y dk dv)`` state per step.

    Args:
        q, k: ``(batch, X, Y, heads, dk)``; v: ``(batch, X, Y, heads, dv)``.
        gates: :class:`PLSTMGates`, each ``(batch, X, Y, heads)``.

    Returns:
        ``(batch, X, Y, heads, dv)``.
    """
    b, nx, ny, h = _check_inputs(q, k, v, gates)
    scale = q.shape[-1] ** -0.5
    zero = q.new_zeros(b, h, q.shape[-1], v.shape[-1])
    c_r: dict[tuple[int, int], torch.Tensor] = {}
    c_d: dict[tuple[int, int], torch.Tensor] = {}
    out = []
    for x in range(nx):
        row = []
        for y in range(ny):
            left = c_r[(x - 1, y)] if x > 0 else zero
            up = c_d[(x, y - 1)] if y > 0 else zero
            kv = torch.einsum("bhk,bhv->bhkv", k[:, x, y], v[:, x, y])

            def gate(g: torch.Tensor, xx: int = x, yy: int = y) -> torch.Tensor:
                return g[:, xx, yy, :, None, None]

            state = gate(gates.m_l) * left + gate(gates.m_u) * up + gate(gates.d) * kv
            row.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, x, y], state))
            c_r[(x, y)] = gate(gates.t_rl) * left + gate(gates.t_ru) * up + gate(gates.s_r) * kv
            c_d[(x, y)] = gate(gates.t_du) * up + gate(gates.t_dl) * left + gate(gates.s_d) * kv
        out.append(torch.stack(row, dim=1))
    return torch.stack(out, dim=1)  # (batch, X, Y, heads, dv)


def gating_matrix(gates: PLSTMGates) -> torch.Tensor:
    """The pLSTM gating matrix ``G``: ``(batch, heads, X*Y, X*Y)``, row-major cell order.

    ``G[b, h, i, j]`` is the summed path weight from the source at cell ``j`` to the mark at
    cell ``i`` (zero unless ``j`` is up-left of ``i``), plus ``D`` on the diagonal.
    """
    b, nx, ny, h = gates.s_r.shape
    n = nx * ny
    g = PLSTMGates(*(t.permute(0, 3, 1, 2) for t in gates))  # each (b, h, X, Y)
    eye = torch.eye(n, dtype=g.s_r.dtype, device=g.s_r.device)
    flat = torch.arange(n, device=g.s_r.device).reshape(nx, ny)
    prev_r = prev_d = g.s_r.new_zeros(b, h, 0, n)
    prev_x0 = 0
    rows, order = [], []
    for t in range(nx + ny - 1):
        x0, x1 = max(0, t - ny + 1), min(t, nx - 1)
        xs = torch.arange(x0, x1 + 1, device=g.s_r.device)
        ys = t - xs
        # previous diagonal padded with a zero row on both ends: the left neighbour of x is
        # padded[x - prev_x0], the upper one padded[x - prev_x0 + 1]; missing ones hit a pad
        pad_r = torch.nn.functional.pad(prev_r, (0, 0, 1, 1))
        pad_d = torch.nn.functional.pad(prev_d, (0, 0, 1, 1))
        idx = xs - prev_x0
        left_r, up_d = pad_r[:, :, idx], pad_d[:, :, idx + 1]  # (b, h, len, n)
        source = eye[flat[xs, ys]]  # (len, n): one-hot of each cell

        def at(gt: torch.Tensor, xs: torch.Tensor = xs, ys: torch.Tensor = ys) -> torch.Tensor:
            return gt[:, :, xs, ys, None]  # (b, h, len, 1)

        rows.append(at(g.m_l) * left_r + at(g.m_u) * up_d + at(g.d) * source)
        prev_r = at(g.t_rl) * left_r + at(g.t_ru) * up_d + at(g.s_r) * source
        prev_d = at(g.t_du) * up_d + at(g.t_dl) * left_r + at(g.s_d) * source
        prev_x0 = x0
        order.append(flat[xs, ys])
    diag_order = torch.cat(rows, dim=2)  # rows in anti-diagonal order
    inverse = torch.empty(n, dtype=torch.long, device=g.s_r.device)
    inverse[torch.cat(order)] = torch.arange(n, device=g.s_r.device)
    return diag_order[:, :, inverse]


def plstm2d_parallel(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gates: PLSTMGates
) -> torch.Tensor:
    """The parallel (attention-like) form: ``h = scale * ((Q K^T) * G) V`` per head.

    Same arguments and result as :func:`plstm2d_recurrent`; equal to it up to float
    rounding. Memory is ``O(batch heads (X Y)^2)``.
    """
    b, nx, ny, h = _check_inputs(q, k, v, gates)
    scale = q.shape[-1] ** -0.5
    gmat = gating_matrix(gates)  # (b, h, N, N)
    qf = q.reshape(b, nx * ny, h, -1).transpose(1, 2)  # (b, h, N, dk)
    kf = k.reshape(b, nx * ny, h, -1).transpose(1, 2)
    vf = v.reshape(b, nx * ny, h, -1).transpose(1, 2)
    scores = scale * (qf @ kf.transpose(-1, -2)) * gmat
    out: torch.Tensor = (scores @ vf).transpose(1, 2).reshape(b, nx, ny, h, -1)
    return out


class PLSTM2D(nn.Module):
    """A 2-D pLSTM layer (P-mode, scalar gates) over a ``(batch, X, Y, dim)`` grid.

    Values are a linear function of the cell's features; queries, keys and gates of a
    depthwise 3x3 convolution of them. Sources, marks and the direct term are sigmoids; the
    transitions leaving an incoming edge are ``f * (a, 1 - a)`` with ``f, a`` sigmoids, so
    an incoming state is split over the two outgoing edges with total weight ``<= 1`` (our
    scalar reading of the paper's P-mode bound: path weights cannot grow with distance).
    With ``directions=4`` the layer runs the recurrence from each corner (flipping the
    grid), with separate heads, so every cell sees the whole grid; the head outputs are
    normalised, concatenated and projected back to ``dim``. As in the reference code, the
    convolution (``conv=True``) and a different initial bias of the split gates per head
    (``linspace(-2, 2)``: some heads start propagating along straight lines, others
    diagonally) help the layer learn directions: on the arrow-pointing benchmark a version
    without them (and one head per direction) stayed at chance, 0.496.

    Args:
        dim: feature size in and out.
        heads: heads per direction.
        head_dim: size of q, k, v per head (default ``dim // heads``, at least 4).
        directions: 1 (from the top-left corner only) or 4.
        parallel: use :func:`plstm2d_parallel` (default) or the cell-by-cell recurrence.
        conv: feed queries, keys and gates through a depthwise 3x3 convolution.

    Example:
        >>> layer = PLSTM2D(16, heads=2)
        >>> layer(torch.randn(3, 5, 6, 16)).shape
        torch.Size([3, 5, 6, 16])
    """

    def __init__(
        self,
        dim: int,
        *,
        heads: int = 2,
        head_dim: int | None = None,
        directions: int = 4,
        parallel: bool = True,
        conv: bool = True,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, min_value=1)
        self.heads = check_int("heads", heads, min_value=1)
        hd = (
            max(4, dim // heads)
            if head_dim is None
            else check_int("head_dim", head_dim, min_value=1)
        )
        self.head_dim = hd
        check_choice("directions", str(directions), ("1", "4"))
        self.directions = int(directions)
        self.parallel = bool(parallel)
        nh = self.heads * self.directions
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim) if conv else None
        self.qk = nn.Linear(dim, 2 * nh * hd)
        self.v = nn.Linear(dim, nh * hd)
        self.gate_proj = nn.Linear(dim, 9 * nh)  # s_r s_d f_r a_r f_d a_d m_l m_u d
        with torch.no_grad():  # long memory (f ~ 0.95); per-head orientation of the split a
            bias = self.gate_proj.bias.view(9, self.directions, self.heads)
            bias.zero_()
            bias[2].fill_(3.0)
            bias[4].fill_(3.0)
            orientation = torch.linspace(-2.0, 2.0, self.heads) if self.heads > 1 else 0.0
            bias[3] += orientation
            bias[5] += orientation
        self.norm = nn.LayerNorm(hd)
        self.out = nn.Linear(nh * hd, dim)

    def _mixed(self, x: torch.Tensor) -> torch.Tensor:
        """The input of queries, keys and gates: the depthwise 3x3 convolution of ``x``."""
        if self.conv is None:
            return x
        conv: torch.Tensor = self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return conv

    def gates(self, x: torch.Tensor) -> PLSTMGates:
        """The gates of every head (directions first) for ``x (batch, X, Y, dim)``."""
        return self._gates(self._mixed(x))

    def _gates(self, mixed: torch.Tensor) -> PLSTMGates:
        b, nx, ny, _ = mixed.shape
        raw = torch.sigmoid(self.gate_proj(mixed).view(b, nx, ny, 9, -1)).unbind(3)
        s_r, s_d, f_r, a_r, f_d, a_d, m_l, m_u, d = raw
        t_rl, t_ru, t_du, t_dl = f_r * a_r, f_r * (1 - a_r), f_d * a_d, f_d * (1 - a_d)
        return PLSTMGates(s_r, s_d, t_rl, t_ru, t_du, t_dl, m_l, m_u, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, X, Y, dim) -> (batch, X, Y, dim)``."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[-1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (batch, X, Y, {self.dim}), got {shape}")
        b, nx, ny, _ = x.shape
        nh, hd = self.heads * self.directions, self.head_dim
        mixed = self._mixed(x)
        q, k = self.qk(mixed).view(b, nx, ny, 2, nh, hd).unbind(3)
        v = self.v(x).view(b, nx, ny, nh, hd)
        gates = self._gates(mixed)
        run = plstm2d_parallel if self.parallel else plstm2d_recurrent
        flips = [[dim for dim, bit in ((1, 1), (2, 2)) if o & bit] for o in range(self.directions)]

        def orient(t: torch.Tensor) -> torch.Tensor:
            # heads of direction o see the grid flipped so that its corner o comes first;
            # all directions then run as one batch of heads
            parts = torch.split(t, self.heads, dim=3)
            return torch.cat([p.flip(f) if f else p for p, f in zip(parts, flips, strict=True)], 3)

        h = orient(run(orient(q), orient(k), orient(v), PLSTMGates(*(orient(t) for t in gates))))
        hcat = self.norm(h)  # (b, X, Y, nh, hd)
        out: torch.Tensor = self.out(hcat.reshape(b, nx, ny, nh * hd))
        return out
