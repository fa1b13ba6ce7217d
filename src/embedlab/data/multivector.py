"""Multi-vector (token) embeddings of texts with the packaged MiniLM model, cached packed.

The vectors are all-MiniLM-L6-v2's last hidden states, one 384-d vector per word piece
(sentence-transformers ``encode(..., output_value="token_embeddings")``; model loaded offline
as in :mod:`embedlab._embed`), with these choices:

- **special tokens dropped**: ``[CLS]``, ``[SEP]`` and padding are removed (the tokenizer's
  special ids); a text without any word piece (empty) keeps its ``[CLS]`` vector, so every
  set holds at least one vector;
- **L2-normalised** per vector (as ColBERT does), so Chamfer = sum of max cosines;
- **length cap**: a text is truncated to ``cap`` word pieces BEFORE encoding (the model's
  ``max_seq_length`` is set to ``cap + 2`` for ``[CLS]``/``[SEP]``), like ColBERT's
  ``doc_maxlen`` / ``query_maxlen``: :data:`DOC_CAP` = 64 for documents, :data:`QUERY_CAP`
  = 32 for queries. No ``[MASK]`` query augmentation (MiniLM was not trained with it).

Vectors are stored float16 in the cache and returned as float32 re-normalised from those
float16 values, so a fresh encoding and a cached one are identical.

Cache (two files per text list, atomic writes, read with ``allow_pickle=False``)::

    {cache_dir}/{model_slug}-{kind}-{key}.npy           (total, 384) float16, set after set
    {cache_dir}/{model_slug}-{kind}-{key}.offsets.npy   (n + 1,) int64: set i = rows
                                                        offsets[i]:offsets[i + 1]

``key`` is :func:`embedlab._embed.cache_path`'s, with the recipe
``"tokens-v1:cap={cap}:" + recipe``: it changes with the model, the source file's sha256, the
text recipe and the cap. A cache pair that does not match the texts is recomputed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from embedlab import _embed
from embedlab._io import atomic_write_bytes
from embedlab._validation import check_int
from embedlab.data._beir import Qrels, read_beir_folder
from embedlab.data.retrieval import parse_retrieval_spec, split_capped

__all__ = [
    "DOC_CAP",
    "QUERY_CAP",
    "MultiVectorData",
    "TokenSets",
    "embed_tokens",
    "load_multivector",
]

DOC_CAP = 64
QUERY_CAP = 32
_MINILM_DIM = 384
_RECIPE_VERSION = "tokens-v1"
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TokenSets:
    """``n`` token matrices packed in one array (the layout of the cache files).

    Args:
        vectors: ``(total, dim)`` float32, set after set, rows L2-normalised.
        offsets: ``(n + 1,)`` int64; set ``i`` is ``vectors[offsets[i]:offsets[i + 1]]``.

    Accepted as is by the multi-vector indexes (``MUVERA.add_multi``, ``chamfer_search``).

    Example:
        >>> import numpy as np
        >>> s = TokenSets(np.eye(3, dtype=np.float32), np.array([0, 2, 3]))
        >>> len(s), s[0].shape, [m.shape[0] for m in s.to_list()]
        (2, (2, 3), [2, 1])
    """

    vectors: F32
    offsets: I64

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def __getitem__(self, i: int) -> F32:
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> I64:
        """``(n,)`` int64: the number of vectors in each set."""
        return np.diff(self.offsets)

    def to_list(self) -> list[F32]:
        """The sets as ``(m_i, dim)`` views."""
        return [self[i] for i in range(len(self))]

    def select(self, rows: Any) -> TokenSets:
        """The sets ``rows`` (in that order), packed anew."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.offsets[rows + 1] - self.offsets[rows]
        offsets = np.zeros(rows.shape[0] + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        index = np.arange(int(offsets[-1]), dtype=np.int64)
        index += np.repeat(self.offsets[rows] - offsets[:-1], lengths)
        return TokenSets(np.ascontiguousarray(self.vectors[index]), offsets)


@dataclass
class MultiVectorData:
    """Token matrices of a corpus and its queries.

    Args:
        name: dataset name (``"dbpedia"``).
        corpus: the documents' token sets (capped at ``doc_cap``).
        corpus_ids: one id per document.
        queries: the queries' token sets (capped at ``query_cap``).
        query_ids: one id per query (the keys of ``qrels``).
        qrels: ``{query_id: {doc_id: grade}}``, or ``None``.
        holdout: held-out corpus documents (removed from ``corpus``) encoded AS QUERIES
            (their first ``query_cap`` word pieces), extra queries for recall against exact
            Chamfer search.
        holdout_ids: their document ids.
        doc_cap, query_cap: the length caps used.
    """

    name: str
    corpus: TokenSets
    corpus_ids: list[str]
    queries: TokenSets
    query_ids: list[str]
    qrels: Qrels | None = None
    holdout: TokenSets | None = None
    holdout_ids: list[str] = field(default_factory=list)
    doc_cap: int = DOC_CAP
    query_cap: int = QUERY_CAP

    @property
    def dim(self) -> int:
        """Token vector dimension."""
        return int(self.corpus.vectors.shape[1])


# -- encoding ----------------------------------------------------------------------------------


def _offsets_path(path: Path) -> Path:
    return path.with_name(path.stem + ".offsets.npy")


def _read_cache(path: Path, n: int) -> TokenSets | None:
    off_path = _offsets_path(path)
    if not (path.is_file() and off_path.is_file()):
        return None
    try:
        vectors = np.load(path, allow_pickle=False)
        offsets = np.load(off_path, allow_pickle=False)
    except (ValueError, OSError):
        return None  # damaged cache: encode again and replace it
    if (
        vectors.ndim != 2
        or vectors.dtype != np.float16
        or offsets.shape != (n + 1,)
        or offsets.dtype != np.int64
        or int(offsets[0]) != 0
        or int(offsets[-1]) != vectors.shape[0]
        or bool((np.diff(offsets) <= 0).any())
    ):
        return None
    return TokenSets(_from_f16(vectors), offsets)


def _from_f16(vectors: np.ndarray) -> F32:
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: F32 = np.ascontiguousarray(out / norms, dtype=np.float32)
    return result


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def embed_tokens(
    texts: Sequence[str],
    *,
    cap: int,
    kind: str,
    recipe: str,
    content_sha256: str | None = None,
    batch_size: int = 32,
    progress: bool = True,
    root: Path | None = None,
) -> TokenSets:
    """Token matrices of ``texts`` with MiniLM, reading / writing the cache.

    Args:
        texts: the texts, in set order.
        cap: word pieces kept per text (>= 1), see the module docstring.
        kind: a short label for the cache file name (``"dbpedia-corpus-tokens"``).
        recipe: how the texts were made from the source; part of the cache key.
        content_sha256: hex sha256 of the source; ``None`` hashes the texts themselves.
        batch_size: texts per forward pass.
        progress: show a rich progress bar while encoding.
        root: the cache folder (default :func:`embedlab._embed.cache_dir`).

    Returns:
        :class:`TokenSets` with ``len(texts)`` sets of 1..cap vectors, 384-d, float32.

    Raises:
        ImportError: sentence-transformers or the model package is missing (says what to
            install).
    """
    cap = check_int("cap", cap, min_value=1)
    content = content_sha256 if content_sha256 is not None else _embed.sha256_texts(texts)
    path = _embed.cache_path(kind, f"{_RECIPE_VERSION}:cap={cap}:{recipe}", content, root=root)
    if not texts:
        return TokenSets(np.zeros((0, _MINILM_DIM), np.float32), np.zeros(1, np.int64))
    cached = _read_cache(path, len(texts))
    if cached is not None:
        return cached
    vectors16, offsets = _encode_tokens(list(texts), cap, batch_size, progress)
    atomic_write_bytes(_offsets_path(path), _npy_bytes(offsets))
    atomic_write_bytes(path, _npy_bytes(vectors16))
    return TokenSets(_from_f16(vectors16), offsets)


def _encode_tokens(
    texts: list[str], cap: int, batch_size: int, progress: bool
) -> tuple[npt.NDArray[np.float16], I64]:
    """Packed float16 token vectors (normalised, specials dropped) and offsets."""
    model: Any = _embed._load_model()
    model.max_seq_length = cap + 2  # [CLS] + cap word pieces + [SEP]
    special = np.array(sorted(set(model.tokenizer.all_special_ids)), dtype=np.int64)
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    sets: list[np.ndarray | None] = [None] * len(texts)
    order = np.argsort([-len(t) for t in texts], kind="stable")  # batches pad little
    chunk = max(batch_size, 256)
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"token embeddings of {len(texts):,} texts", total=len(texts))
        for start in range(0, len(texts), chunk):
            rows = order[start : start + chunk]
            batch = [texts[i] for i in rows]
            embs = model.encode(
                batch,
                output_value="token_embeddings",
                batch_size=batch_size,
                show_progress_bar=False,
            )
            feats = tokenize(batch)
            input_ids = np.asarray(feats["input_ids"], dtype=np.int64)
            lengths = np.asarray(feats["attention_mask"]).sum(axis=1)
            for j, (row, emb) in enumerate(zip(rows, embs, strict=True)):
                e = np.asarray(emb.float().cpu().numpy() if hasattr(emb, "cpu") else emb)
                length = int(lengths[j])
                if e.shape[0] != length:
                    raise RuntimeError(
                        f"token embeddings of text {int(row)} have {e.shape[0]} rows but its "
                        f"tokenisation has {length} tokens"
                    )
                keep = ~np.isin(input_ids[j, :length], special)
                e = e[keep] if keep.any() else e[:1]  # no word piece: keep [CLS]
                norms = np.linalg.norm(e, axis=1, keepdims=True)
                norms[norms == 0] = 1.0
                sets[int(row)] = (e / norms).astype(np.float16)
            bar.advance(task, len(rows))
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum([s.shape[0] for s in sets if s is not None], out=offsets[1:])
    return np.concatenate([s for s in sets if s is not None]), offsets


# -- BEIR --------------------------------------------------------------------------------------


def load_multivector(
    spec: str,
    *,
    seed: int = 0,
    n_holdout: int = 0,
    doc_cap: int = DOC_CAP,
    query_cap: int = QUERY_CAP,
    progress: bool = True,
    split: str = "test",
) -> MultiVectorData:
    """Token matrices of a BEIR corpus and its queries, with qrels (``"beir:DIR"``).

    Documents are ``title + " " + text`` capped at ``doc_cap`` word pieces, queries ``text``
    capped at ``query_cap`` (see the module docstring). ``n_holdout`` documents, chosen by
    ``seed`` among those no qrels row names, are removed from the corpus and returned as
    extra queries (their text encoded with the query cap).

    Raises:
        ValueError: the spec is not ``beir:DIR`` or the folder is incomplete.

    Example:
        >>> data = load_multivector("beir:../shared/data/beir-mini/dbpedia")  # doctest: +SKIP
        >>> len(data.corpus), len(data.queries), data.corpus[0].shape  # doctest: +SKIP
        (5000, 50, (64, 384))
    """
    name, path = parse_retrieval_spec(spec)
    if name != "beir":
        raise ValueError(f"multi-vector data supports beir:DIR only, got {spec!r}")
    check_int("seed", seed, min_value=0)
    check_int("n_holdout", n_holdout, min_value=0)
    beir = read_beir_folder(path, split)
    doc_ids, doc_texts, q_ids, qrels = beir.doc_ids, beir.doc_texts, beir.query_ids, beir.qrels
    ds = beir.name
    corpus = embed_tokens(
        doc_texts,
        cap=doc_cap,
        kind=f"{ds}-corpus-tokens",
        recipe="beir-corpus:title+' '+text",
        content_sha256=_embed.sha256_file(beir.corpus_file),
        progress=progress,
    )
    queries = embed_tokens(
        beir.query_texts,
        cap=query_cap,
        kind=f"{ds}-queries-tokens",
        recipe="beir-queries:text",
        content_sha256=_embed.sha256_file(beir.query_file),
        progress=progress,
    )
    kept, held = split_capped(len(doc_ids), n_holdout, seed, beir.judged_mask(), ds)
    held_texts = [doc_texts[i] for i in held]
    holdout = embed_tokens(
        held_texts,
        cap=query_cap,
        kind=f"{ds}-holdout-tokens",
        recipe="beir-corpus-as-queries:title+' '+text",
        progress=progress,
    )
    return MultiVectorData(
        name=ds,
        corpus=corpus.select(kept) if len(held) else corpus,
        corpus_ids=[doc_ids[i] for i in kept],
        queries=queries,
        query_ids=q_ids,
        qrels=qrels,
        holdout=holdout,
        holdout_ids=[doc_ids[i] for i in held],
        doc_cap=doc_cap,
        query_cap=query_cap,
    )
