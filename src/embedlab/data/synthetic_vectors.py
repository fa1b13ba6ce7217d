"""Clustered, anisotropic synthetic vectors for retrieval at scale, generated in chunks.

``synthetic:n=1000000,dim=384,clusters=1000`` (the retrieval data source) draws a Gaussian
mixture: ``clusters`` centres, each cluster with its own per-axis spread (log-normal, so some
directions are 10x wider than others) in a shared random rotation, cluster sizes from a
Zipf-like law. Real embeddings are like that — clustered and far from isotropic — and
isotropic Gaussians flatter every quantiser. The queries are fresh draws from the same
mixture (no query is a corpus vector).

The corpus is written chunk by chunk into a ``.npy`` file under the cache folder
(``$EMBEDLAB_CACHE`` or ``~/.cache/embedlab``) and returned memory-mapped, so 10M x 128
(5 GB) never has to fit in RAM; the same parameters reuse the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, overload

import numpy as np

from embedlab._validation import check_int

__all__ = ["SyntheticVectors", "make_clustered_vectors", "parse_synthetic_options"]

_CHUNK = 65_536
_KEYS = ("n", "dim", "clusters", "seed", "spread")


@dataclass(frozen=True)
class SyntheticVectors:
    """The mixture's parameters; :meth:`chunks` draws its rows deterministically."""

    n: int
    dim: int
    clusters: int = 1000
    seed: int = 0
    spread: float = 0.35  # cluster radius relative to the spacing of the centres

    def _model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 0])
        centres = rng.standard_normal((self.clusters, self.dim)).astype(np.float32)
        scales = np.exp(rng.normal(0.0, 0.8, (self.clusters, self.dim))).astype(np.float32)
        scales *= self.spread / np.sqrt((scales**2).mean(axis=1, keepdims=True))
        rotation, _ = np.linalg.qr(rng.standard_normal((self.dim, self.dim)))
        weights = 1.0 / np.arange(1, self.clusters + 1) ** 0.5
        return centres, scales, rotation.astype(np.float32), weights / weights.sum()

    def chunks(self, n: int, stream: int, chunk: int = _CHUNK) -> Iterator[np.ndarray]:
        """``n`` rows ``(<= chunk, dim)`` float32 of random stream ``stream`` (0: corpus)."""
        centres, scales, rotation, weights = self._model()
        rng = np.random.default_rng([self.seed, 1 + stream])
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            c = rng.choice(self.clusters, size=m, p=weights)
            z = rng.standard_normal((m, self.dim)).astype(np.float32) * scales[c]
            yield (centres[c] + z @ rotation).astype(np.float32)


def parse_synthetic_options(text: str | None) -> SyntheticVectors:
    """``"n=1000000,dim=384,clusters=1000"`` -> :class:`SyntheticVectors` (clear errors)."""
    values: dict[str, Any] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS:
            raise ValueError(
                f"synthetic data options are key=value with keys {', '.join(_KEYS)}, got {part!r}"
            )
        try:
            values[key] = float(value) if key == "spread" else int(value)
        except ValueError:
            raise ValueError(f"synthetic option {key} must be a number, got {value!r}") from None
    if "n" not in values or "dim" not in values:
        raise ValueError(f"synthetic data needs n= and dim=, got {text!r}")
    spec = SyntheticVectors(**values)
    check_int("n", spec.n, min_value=2)
    check_int("dim", spec.dim, min_value=1)
    check_int("clusters", spec.clusters, min_value=1)
    check_int("seed", spec.seed, min_value=0)
    if spec.clusters > spec.n:
        raise ValueError(f"clusters must be <= n ({spec.n}), got {spec.clusters}")
    if not 0 < spec.spread < 100:
        raise ValueError(f"spread must be in (0, 100), got {spec.spread}")
    return spec


def make_clustered_vectors(spec: SyntheticVectors, folder: str | os.PathLike[str]) -> np.ndarray:
    """The corpus of ``spec`` as a read-only memory map of ``folder/<name>.npy``.

    Written chunk by chunk (an existing complete file is reused); the file name encodes
    every parameter.
    """
    name = f"synthetic-n{spec.n}-d{spec.dim}-c{spec.clusters}-s{spec.seed}-r{spec.spread:g}.npy"
    path = Path(folder) / name
    if path.is_file():
        try:
            arr = cast(np.ndarray, np.load(path, mmap_mode="r", allow_pickle=False))
            if arr.shape == (spec.n, spec.dim) and arr.dtype == np.float32:
                return arr
        except ValueError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(spec.n, spec.dim))
    start = 0
    for block in spec.chunks(spec.n, stream=0):
        out[start : start + block.shape[0]] = block
        start += block.shape[0]
    out.flush()
    del out
    os.replace(tmp, path)
    return cast(np.ndarray, np.load(path, mmap_mode="r", allow_pickle=False))


class RowNames(Sequence[str]):
    """``str(i)`` for ``i`` in ``range(n)`` without holding ``n`` strings."""

    def __init__(self, n: int, offset: int = 0) -> None:
        self._n, self._offset = n, offset

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [str(self._offset + j) for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return str(self._offset + (i % self._n))
