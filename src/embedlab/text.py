"""Texts to vectors with any sentence-transformers model, offline and cached.

The packaged all-MiniLM-L6-v2 (384-d) is the default and needs nothing but the
``[text]`` extra. Any other sentence-transformers model works when it is on this
machine: pass its folder, or its name once it is in the local Hugging Face cache.
embedlab never downloads a model at run time.

Example:
    >>> from embedlab.text import embed_texts
    >>> vecs = embed_texts(["a cat on a mat", "a dog in a fog"])  # doctest: +SKIP
    >>> vecs.shape  # doctest: +SKIP
    (2, 384)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedlab import _embed
from embedlab._embed import MODEL_NAME, load_sentence_model
from embedlab._validation import check_int

__all__ = ["MODEL_NAME", "embed_texts", "load_sentence_model"]


def embed_texts(
    texts: Sequence[str],
    model: str = MODEL_NAME,
    *,
    batch_size: int = 64,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` with a sentence model; rows are L2-normalised float32.

    Args:
        texts: the texts, in row order (a list of ``str``; a single ``str`` is refused).
        model: ``"all-MiniLM-L6-v2"`` (packaged, the default), a local model folder, or the
            name of a model already in the local Hugging Face cache.
        batch_size: texts per forward pass (``>= 1``).
        cache: reuse / store the result under ``cache_dir`` keyed by the model and the
            texts' sha256 (see :mod:`embedlab._embed` for the scheme).
        cache_dir: the cache folder; default ``$EMBEDLAB_CACHE`` or ``~/.cache/embedlab``.
        progress: show a progress bar while encoding.

    Returns:
        ``(len(texts), dim)`` float32.

    Raises:
        TypeError: ``texts`` is a string or holds a non-string.
        ValueError: ``model`` cannot be found offline; ``batch_size < 1``.
        ImportError: the ``[text]`` extra is not installed.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a sequence of strings, got a single string")
    items = list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(t).__name__}")
    check_int("batch_size", batch_size, min_value=1)
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be a non-empty str (a name or a folder), got {model!r}")
    if not cache:
        return np.ascontiguousarray(
            _embed.encode(items, batch_size, progress, model), dtype=np.float32
        )
    root = Path(cache_dir).expanduser() if cache_dir is not None else None
    return _embed.embed_texts(
        items,
        kind="texts",
        recipe="embed_texts",
        batch_size=batch_size,
        progress=progress,
        root=root,
        model=model,
    )
