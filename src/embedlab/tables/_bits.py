"""Bit-width arithmetic and bit packing for tables that store sub-byte integers.

Used by ``alpt`` (b-bit codes, packed row by row) and ``dedup`` (pointers of
``ceil(log2 U)`` bits). Values are laid out as one little-endian bit stream: value
``k`` occupies bits ``[k * bits, (k + 1) * bits)`` of its row, least significant bit
first, and the stream is zero-padded to whole bytes.
"""

from __future__ import annotations

import math

import torch

from embedlab._validation import check_int

__all__ = ["index_bits", "pack_bits", "packed_bytes", "unpack_bits"]


def index_bits(n_values: int) -> int:
    """Bits needed to address ``n_values`` distinct values (at least 1)."""
    n = check_int("n_values", n_values, min_value=1)
    return max(1, (n - 1).bit_length())


def packed_bytes(n_values: int, bits: int) -> int:
    """Bytes of ``n_values`` values of ``bits`` bits packed into one stream."""
    return math.ceil(n_values * bits / 8)


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack unsigned integers of ``bits`` bits along the last axis.

    Args:
        values: ``(..., n)`` integer tensor with entries in ``[0, 2**bits)``.
        bits: width of one value, 1 to 32.

    Returns:
        ``(..., ceil(n * bits / 8))`` uint8.
    """
    bits = check_int("bits", bits, min_value=1)
    if bits > 32:
        raise ValueError(f"bits must be <= 32, got {bits}")
    v = values.to(torch.int64)
    if v.numel() and (int(v.min()) < 0 or int(v.max()) >= 1 << bits):
        raise ValueError(
            f"values must lie in [0, {1 << bits}) to be packed in {bits} bits, "
            f"got range [{int(v.min())}, {int(v.max())}]"
        )
    *lead, n = v.shape
    shifts = torch.arange(bits, device=v.device)
    stream = ((v.unsqueeze(-1) >> shifts) & 1).reshape(*lead, n * bits)
    pad = (-(n * bits)) % 8
    stream = torch.nn.functional.pad(stream, (0, pad)).reshape(*lead, -1, 8)  # (..., bytes, 8)
    weights = torch.arange(8, device=v.device)
    return (stream << weights).sum(dim=-1).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``(..., bytes)`` uint8 -> ``(..., n)`` int64."""
    bits = check_int("bits", bits, min_value=1)
    n = check_int("n", n, min_value=0)
    need = packed_bytes(n, bits)
    if packed.dtype != torch.uint8 or packed.shape[-1] != need:
        raise ValueError(
            f"packed must be uint8 with {need} bytes in its last axis for {n} values of "
            f"{bits} bits, got {packed.dtype} with shape {tuple(packed.shape)}"
        )
    *lead, nbytes = packed.shape
    p = packed.to(torch.int64)
    stream = ((p.unsqueeze(-1) >> torch.arange(8, device=p.device)) & 1).reshape(*lead, nbytes * 8)
    digits = stream[..., : n * bits].reshape(*lead, n, bits)
    return (digits << torch.arange(bits, device=p.device)).sum(dim=-1)
