"""Neural-network layers for geometric and grid-structured inputs.

- :class:`NUFT` — differentiable non-uniform Fourier transform of 2-D point sets, segments
  and triangle meshes onto a ``res x res`` spectral grid (or its inverse-FFT raster);
  Jiang et al., ICLR 2019 (DDSL / NUFT CNNs).
- :class:`PLSTM2D` — a 2-D pLSTM layer (source, transition and mark gates) computed in its
  parallel, attention-like form; :func:`plstm2d_recurrent` is the cell-by-cell recurrence it
  equals. Pöppel et al., 2025.

Example:
    >>> import torch
    >>> from embedlab.layers import NUFT, PLSTM2D
    >>> NUFT(16, output="raster")(torch.rand(4, 50, 2)).shape
    torch.Size([4, 16, 16])
    >>> PLSTM2D(8)(torch.randn(2, 4, 4, 8)).shape
    torch.Size([2, 4, 4, 8])
"""

from __future__ import annotations

from embedlab.layers.nuft import NUFT, nuft_frequencies
from embedlab.layers.plstm import (
    PLSTM2D,
    PLSTMGates,
    gating_matrix,
    plstm2d_parallel,
    plstm2d_recurrent,
)

__all__ = [
    "NUFT",
    "PLSTM2D",
    "PLSTMGates",
    "gating_matrix",
    "nuft_frequencies",
    "plstm2d_parallel",
    "plstm2d_recurrent",
]
