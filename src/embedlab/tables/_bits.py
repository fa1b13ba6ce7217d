"""Bit-width arithmetic and bit packing for tables that store sub-byte integers.

Used by ``alpt`` (b-bit codes, packed row by row), ``dedup`` (pointers of
``ceil(log2 U)`` bits), ``dpq`` / ``mgqe`` (codes) and the exported inference modules, which
read single values (:func:`gather_bits`) and bitmap ranks (:func:`bit_rank`) straight from
the packed bytes, with no data-dependent control flow (``torch.export`` traces them).

Values are laid out as one little-endian bit stream: value ``k`` occupies bits
``[k * bits, (k + 1) * bits)`` of its row, least significant bit first, and the stream is
zero-padded to whole bytes.
"""

from __future__ import annotations

import math

import torch

from embedlab._validation import check_int

__all__ = ["bit_rank", "gather_bits", "index_bits", "pack_bits", "packed_bytes", "unpack_bits"]


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


def gather_bits(packed: torch.Tensor, index: torch.Tensor, bits: int) -> torch.Tensor:
    """Values ``index`` of one flat :func:`pack_bits` stream, read without unpacking it.

    Args:
        packed: ``(n_bytes,)`` uint8, the stream.
        index: int64 of any shape, positions of the values; positions past the end read
            garbage (clamped bytes), never out of bounds.
        bits: width of one value, 1 to 32.

    Returns:
        int64 of ``index``'s shape.
    """
    span = torch.arange((bits + 14) // 8, device=index.device)  # bytes a value can touch
    start = index * bits
    byte = ((start >> 3).unsqueeze(-1) + span).clamp(0, packed.shape[0] - 1)
    word = (packed[byte].to(torch.int64) << (8 * span)).sum(dim=-1)  # disjoint bits: sum = or
    return (word >> (start & 7)) & ((1 << bits) - 1)


def _popcount8(x: torch.Tensor) -> torch.Tensor:
    """Set bits of every byte value in ``x`` (int64 in ``[0, 256)``)."""
    x = x - ((x >> 1) & 0x55)
    x = (x & 0x33) + ((x >> 2) & 0x33)
    return (x + (x >> 4)) & 0x0F


def bit_rank(
    bitmap: torch.Tensor, block_ones: torch.Tensor, pos: torch.Tensor, *, block_bits: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bit at ``pos`` of a bitmap and the number of set bits before it.

    Args:
        bitmap: ``(n_bytes,)`` uint8, bit ``p`` is bit ``p % 8`` of byte ``p // 8``.
        block_ones: ``(ceil(8 * n_bytes / block_bits),)`` set bits before each block of
            ``block_bits`` bits (a rank directory), any integer dtype.
        pos: int64 of any shape, bit positions inside the bitmap.
        block_bits: bits per directory block, a multiple of 8.

    Returns:
        ``(bit, rank)``: bool and int64 of ``pos``'s shape.
    """
    block = pos // block_bits
    within = pos - block * block_bits  # bits of the block before pos
    k = torch.arange(block_bits // 8, device=pos.device)
    byte = (block * (block_bits // 8)).unsqueeze(-1) + k  # (..., bytes per block)
    last = bitmap.shape[0] - 1
    values = bitmap[byte.clamp(0, last)].to(torch.int64) * (byte <= last)
    full = within >> 3
    before = (_popcount8(values) * (k < full.unsqueeze(-1))).sum(dim=-1)
    here = torch.gather(values, -1, full.unsqueeze(-1)).squeeze(-1)
    bit = (here >> (within & 7)) & 1
    partial = _popcount8(here & ((1 << (within & 7)) - 1))
    return bit.bool(), block_ones[block].to(torch.int64) + before + partial
