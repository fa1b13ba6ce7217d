"""Vectors for the retrieval suite: a corpus, queries, optional graded qrels, held-out queries.

``load_retrieval(spec, seed=0, n_holdout=1000)`` is the one entry point; specs are parsed by
:func:`parse_retrieval_spec` and each source is one entry of :data:`RETRIEVAL_SOURCES`:

- ``beir:DIR`` — a BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``),
  ``queries.jsonl`` (``_id``, ``text``) and ``qrels/test.tsv`` (``query-id``, ``corpus-id``,
  ``score``, with a header). Documents are embedded as ``title + " " + text``, queries as
  ``text``, with the packaged MiniLM model (see :mod:`embedlab._embed` for the cache).
  qrels rows naming an unknown query or document are skipped and counted in one warning.
- ``npy:PATH`` — a ``(n, d)`` ``.npy`` of vectors; ``npy:CORPUS.npy,QUERIES.npy`` gives the
  queries (no qrels, no hold-out: recall against exact search is measured on those queries).
- ``docstrings`` (the embedded default) — module / class / function docstrings of the Python
  standard library, read with :mod:`ast` from the source files (nothing is imported),
  first paragraph, whitespace collapsed, deduplicated, at most ``max_texts`` (5,000) chosen
  by a content hash, embedded with MiniLM. Its queries are held-out corpus vectors only
  (there are no natural query texts with judged answers, so no qrels).

**Held-out queries.** ``n_holdout`` corpus vectors, chosen by ``seed``, are removed from
the corpus and kept as extra queries for recall against exact search (the issue's "1,000
held-out corpus vectors in addition to the 50 BEIR queries"). For BEIR they are drawn from
documents no qrels row names, so the judged documents all stay searchable (documents judged
0 are used only when there are not enough unjudged ones).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedlab import _embed
from embedlab._registry import Registry
from embedlab._validation import check_finite, check_int
from embedlab.data._beir import BeirTexts, Qrels, read_beir_folder, read_beir_qrels, read_jsonl
from embedlab.data._encode import check_file
from embedlab.data._holdout import holdout_split, split_capped
from embedlab.data._stdlib_texts import DOCSTRINGS_RECIPE, stdlib_docstrings

__all__ = [
    "RETRIEVAL_SOURCES",
    "BeirTexts",
    "RetrievalData",
    "RetrievalSource",
    "holdout_split",
    "load_beir",
    "load_docstrings",
    "load_npy_vectors",
    "load_retrieval",
    "parse_retrieval_spec",
    "read_beir_folder",
    "read_beir_qrels",
    "read_jsonl",
    "split_capped",
    "stdlib_docstrings",
]


@dataclass
class RetrievalData:
    """A corpus to index and the queries to search it with.

    Args:
        name: dataset name used in benchmark records (``"dbpedia"``).
        corpus: ``(n, d)`` float32 corpus vectors.
        corpus_ids: ``n`` document ids.
        queries: ``(n_q, d)`` real queries (``n_q`` may be 0).
        query_ids: ``n_q`` query ids (the keys of ``qrels``).
        qrels: ``{query_id: {doc_id: grade}}`` graded judgements, or ``None``.
        holdout: ``(n_h, d)`` corpus vectors removed from the corpus, used as extra queries
            for recall against exact search.
        holdout_ids: their ``n_h`` document ids.
        model: what made the vectors (``"minilm"`` for text, ``"vectors"`` for ``.npy``).

    Example:
        >>> import numpy as np
        >>> x = np.eye(3, dtype=np.float32)
        >>> d = RetrievalData("toy", x[:2], ["a", "b"], x[2:], ["q"], None)
        >>> d.dim, d.n_corpus, d.exact_queries.shape
        (3, 2, (1, 3))
    """

    name: str
    corpus: np.ndarray
    corpus_ids: list[str]
    queries: np.ndarray
    query_ids: list[str]
    qrels: Qrels | None = None
    holdout: np.ndarray | None = None
    holdout_ids: list[str] = field(default_factory=list)
    model: str = "vectors"

    def __post_init__(self) -> None:
        self.corpus = _as_matrix("corpus", self.corpus)
        d = self.corpus.shape[1]
        if self.corpus.shape[0] == 0:
            raise ValueError("corpus must not be empty, got 0 rows")
        self.queries = _as_matrix("queries", self.queries, dim=d)
        self.holdout = _as_matrix(
            "holdout", np.zeros((0, d), np.float32) if self.holdout is None else self.holdout, dim=d
        )
        for name, ids, n in (
            ("corpus_ids", self.corpus_ids, self.corpus.shape[0]),
            ("query_ids", self.query_ids, self.queries.shape[0]),
            ("holdout_ids", self.holdout_ids, self.holdout.shape[0]),
        ):
            if len(ids) != n:
                raise ValueError(f"{name} must have one id per row ({n}), got {len(ids)}")

    @property
    def dim(self) -> int:
        """Vector dimension (columns of ``corpus``)."""
        return int(self.corpus.shape[1])

    @property
    def n_corpus(self) -> int:
        """Number of corpus vectors (rows of ``corpus``)."""
        return int(self.corpus.shape[0])

    @property
    def exact_queries(self) -> np.ndarray:
        """Queries for recall against exact search: the held-out vectors, else the queries."""
        assert self.holdout is not None
        return self.holdout if self.holdout.shape[0] else self.queries


def _as_matrix(name: str, value: Any, *, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (rows, dim), got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have dim {dim} like the corpus, got {arr.shape[1]}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    check_finite(name, arr)
    return arr


# -- the registry of sources ------------------------------------------------------------------

Loader = Callable[..., RetrievalData]


@dataclass(frozen=True)
class RetrievalSource:
    """One registered source: ``load(path, *, seed, n_holdout, progress, **options)``."""

    load: Loader
    needs_path: bool
    summary: str


RETRIEVAL_SOURCES: Registry[RetrievalSource] = Registry("retrieval data source")


def parse_retrieval_spec(spec: str) -> tuple[str, str | None]:
    """Split ``"name"`` or ``"name:PATH"``; the path is kept as text (``npy`` takes two).

    Example:
        >>> parse_retrieval_spec("npy:x.npy,q.npy")
        ('npy', 'x.npy,q.npy')
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"data spec must look like name or name:PATH, got {spec!r}")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip()
    source = RETRIEVAL_SOURCES.get(name)  # unknown name: the error lists the valid ones
    path = rest.strip() if sep else None
    if sep and not path:
        raise ValueError(f"data spec must give a path after ':', got {spec!r}")
    if source.needs_path and path is None:
        raise ValueError(f"data source {name!r} needs a path: {name}:PATH, got {spec!r}")
    if not source.needs_path and path is not None:
        raise ValueError(f"data source {name!r} takes no path, got {spec!r}")
    return name, path


def load_retrieval(
    spec: str, *, seed: int = 0, n_holdout: int = 1000, progress: bool = True, **options: Any
) -> RetrievalData:
    """Load the retrieval data named by ``spec`` (see the module docstring for the sources).

    Args:
        spec: ``"docstrings"``, ``"beir:DIR"``, ``"npy:PATH"`` or ``"npy:CORPUS,QUERIES"``.
        seed: chooses the held-out rows.
        n_holdout: corpus vectors held out as extra queries (0 for none); capped at what
            the source can spare, with a warning.
        progress: progress bar while embedding text.
        options: source-specific, e.g. ``max_texts`` for ``docstrings``.

    Example:
        >>> data = load_retrieval("beir:../shared/data/beir-mini/dbpedia")  # doctest: +SKIP
    """
    name, path = parse_retrieval_spec(spec)
    check_int("seed", seed, min_value=0)
    check_int("n_holdout", n_holdout, min_value=0)
    source = RETRIEVAL_SOURCES.get(name)
    return source.load(path, seed=seed, n_holdout=n_holdout, progress=progress, **options)


def _register(name: str, *, needs_path: bool, summary: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        RETRIEVAL_SOURCES.register(name)(RetrievalSource(fn, needs_path, summary))
        return fn

    return deco


# -- BEIR ------------------------------------------------------------------------------------


@_register("beir", needs_path=True, summary="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
def load_beir(
    path: str | Path | None,
    *,
    seed: int = 0,
    n_holdout: int = 1000,
    progress: bool = True,
    split: str = "test",
) -> RetrievalData:
    """Load and embed a BEIR folder (see the module docstring)."""
    beir = read_beir_folder(path, split)
    doc_ids, q_ids, qrels = beir.doc_ids, beir.query_ids, beir.qrels
    name = beir.name
    corpus = _embed.embed_texts(
        beir.doc_texts,
        kind=f"{name}-corpus",
        recipe="beir-corpus:title+' '+text",
        content_sha256=_embed.sha256_file(beir.corpus_file),
        progress=progress,
    )
    queries = _embed.embed_texts(
        beir.query_texts,
        kind=f"{name}-queries",
        recipe="beir-queries:text",
        content_sha256=_embed.sha256_file(beir.query_file),
        progress=progress,
    )
    kept, held = split_capped(len(doc_ids), n_holdout, seed, beir.judged_mask(), name)
    return RetrievalData(
        name=name,
        corpus=corpus[kept],
        corpus_ids=[doc_ids[i] for i in kept],
        queries=queries,
        query_ids=q_ids,
        qrels=qrels,
        holdout=corpus[held],
        holdout_ids=[doc_ids[i] for i in held],
        model="minilm",
    )


# -- .npy vectors ----------------------------------------------------------------------------


def _load_npy(path: Path, what: str) -> np.ndarray:
    check_file(path, what)
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise ValueError(f"{path}: not a numeric .npy file ({exc})") from None
    return _as_matrix(f"{what} {path.name}", arr)


@_register("npy", needs_path=True, summary="npy:VECTORS.npy or npy:CORPUS.npy,QUERIES.npy")
def load_npy_vectors(
    path: str | Path | None, *, seed: int = 0, n_holdout: int = 1000, progress: bool = True
) -> RetrievalData:
    """``(n, d)`` vectors from ``.npy``; queries held out by ``seed`` or given as a 2nd file."""
    del progress  # nothing to embed
    parts = [p.strip() for p in str(path).split(",")]
    if len(parts) > 2 or not all(parts):
        raise ValueError(f"npy path must be CORPUS.npy or CORPUS.npy,QUERIES.npy, got {path!r}")
    corpus_path = Path(parts[0]).expanduser()
    corpus = _load_npy(corpus_path, "corpus")
    ids = [str(i) for i in range(corpus.shape[0])]
    if len(parts) == 2:
        queries = _load_npy(Path(parts[1]).expanduser(), "queries")
        if queries.shape[1] != corpus.shape[1]:
            raise ValueError(
                f"queries must have dim {corpus.shape[1]} like the corpus, got {queries.shape[1]}"
            )
        return RetrievalData(
            corpus_path.stem, corpus, ids, queries, [f"q{i}" for i in range(queries.shape[0])]
        )
    kept, held = split_capped(corpus.shape[0], n_holdout, seed, None, corpus_path.stem)
    return RetrievalData(
        name=corpus_path.stem,
        corpus=corpus[kept],
        corpus_ids=[ids[i] for i in kept],
        queries=np.zeros((0, corpus.shape[1]), np.float32),
        query_ids=[],
        holdout=corpus[held],
        holdout_ids=[ids[i] for i in held],
    )


# -- synthetic clustered vectors ------------------------------------------------------------


@_register(
    "synthetic",
    needs_path=True,
    summary="synthetic:n=N,dim=D[,clusters=C,seed=S,spread=R] clustered anisotropic vectors",
)
def load_synthetic_vectors(
    path: str | Path | None, *, seed: int = 0, n_holdout: int = 1000, progress: bool = True
) -> RetrievalData:
    """A Gaussian-mixture corpus (memory-mapped from the cache) and ``n_holdout`` fresh draws
    of the same mixture as queries (``seed`` picks them); see
    :mod:`embedlab.data.synthetic_vectors`."""
    from embedlab.data.synthetic_vectors import (
        RowNames,
        make_clustered_vectors,
        parse_synthetic_options,
    )

    del progress
    spec = parse_synthetic_options(None if path is None else str(path))
    corpus = make_clustered_vectors(spec, _embed.cache_dir() / "synthetic")
    n_q = max(1, n_holdout)
    queries = np.concatenate(list(spec.chunks(n_q, stream=1 + seed)))
    return RetrievalData(
        name=f"synthetic-{spec.n}x{spec.dim}",
        corpus=corpus,
        corpus_ids=RowNames(spec.n),  # type: ignore[arg-type]
        queries=np.zeros((0, spec.dim), np.float32),
        query_ids=[],
        holdout=queries,
        holdout_ids=[f"q{i}" for i in range(n_q)],
    )


# -- standard-library docstrings -------------------------------------------------------------


@_register("docstrings", needs_path=False, summary="Python standard-library docstrings (default)")
def load_docstrings(
    path: str | Path | None = None,
    *,
    seed: int = 0,
    n_holdout: int = 1000,
    progress: bool = True,
    max_texts: int = 5000,
    stdlib: str | Path | None = None,
) -> RetrievalData:
    """Embedded default: stdlib docstrings with MiniLM; queries are held-out vectors.

    ``stdlib`` overrides the source folder (default ``sysconfig.get_paths()["stdlib"]``).
    """
    del path
    ids, texts = stdlib_docstrings(max_texts, stdlib=stdlib)
    vectors = _embed.embed_texts(
        texts,
        kind=f"docstrings-py{sys.version_info[0]}{sys.version_info[1]}",
        recipe=DOCSTRINGS_RECIPE,
        progress=progress,
    )
    kept, held = split_capped(len(ids), n_holdout, seed, None, "docstrings")
    d = vectors.shape[1]
    return RetrievalData(
        name="docstrings",
        corpus=vectors[kept],
        corpus_ids=[ids[i] for i in kept],
        queries=np.zeros((0, d), np.float32),
        query_ids=[],
        holdout=vectors[held],
        holdout_ids=[ids[i] for i in held],
        model="minilm",
    )
