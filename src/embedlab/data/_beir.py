"""Reading BEIR folders: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv``.

Texts only; :func:`embedlab.data.retrieval.load_beir` embeds them.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.data._encode import check_file, check_path

__all__ = ["BeirTexts", "Qrels", "read_beir_folder", "read_beir_qrels", "read_jsonl"]

Qrels = dict[str, dict[str, int]]


def read_jsonl(path: Path, *, required: Sequence[str] = ("_id",)) -> Iterator[dict[str, Any]]:
    """JSON objects of a ``.jsonl`` file; a bad line raises ``ValueError`` naming file and line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path} line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: must be a JSON object, got {type(obj).__name__}")
            for key in required:
                if key not in obj:
                    raise ValueError(f"{where}: missing key {key!r}")
            obj["_id"] = str(obj["_id"])
            yield obj


def _read_beir_texts(path: Path, what: str, recipe: Callable[[dict[str, Any]], str]) -> Any:
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for obj in read_jsonl(path):
        if obj["_id"] in seen:
            raise ValueError(f"{path}: duplicate {what} id {obj['_id']!r}")
        seen.add(obj["_id"])
        ids.append(obj["_id"])
        texts.append(recipe(obj))
    if not ids:
        raise ValueError(f"{path} holds no {what}s")
    return ids, texts


def read_beir_qrels(
    path: Path, query_ids: Sequence[str], corpus_ids: Sequence[str]
) -> tuple[Qrels, int]:
    """Read a BEIR qrels TSV (header, then ``query-id corpus-id score``).

    Returns:
        ``({query_id: {doc_id: grade}}, n_skipped)``: rows naming an unknown query or
        document are skipped and counted; a malformed row raises ``ValueError`` with its line.
    """
    known_q, known_d = set(query_ids), set(corpus_ids)
    qrels: Qrels = {}
    skipped = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if not line.strip() or (lineno == 1 and parts[-1].strip().lower() == "score"):
                continue
            if len(parts) != 3:
                raise ValueError(
                    f"{path} line {lineno}: expected 3 tab-separated columns "
                    f"(query-id, corpus-id, score), got {len(parts)}"
                )
            qid, did, score = (p.strip() for p in parts)
            try:
                grade = int(score)
            except ValueError:
                raise ValueError(
                    f"{path} line {lineno}: score must be an integer, got {score!r}"
                ) from None
            if qid not in known_q or did not in known_d:
                skipped += 1
                continue
            qrels.setdefault(qid, {})[did] = grade
    return qrels, skipped


def _beir_doc_text(obj: dict[str, Any]) -> str:
    return f"{obj.get('title') or ''} {obj.get('text') or ''}".strip()


def _beir_query_text(obj: dict[str, Any]) -> str:
    return str(obj.get("text") or "").strip()


@dataclass(frozen=True)
class BeirTexts:
    """The texts and qrels of a BEIR folder, before any embedding."""

    name: str
    corpus_file: Path
    query_file: Path
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: Qrels

    def judged_mask(self) -> np.ndarray:
        """``(n_docs,)`` bool: documents that some qrels row names."""
        judged = {d for per_q in self.qrels.values() for d in per_q}
        return np.array([d in judged for d in self.doc_ids], dtype=bool)


def read_beir_folder(path: str | Path | None, split: str = "test") -> BeirTexts:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv`` of a BEIR folder.

    Qrels rows naming an unknown query or document are skipped with a warning.
    """
    root = check_path(Path(str(path)))
    if not root.is_dir():
        raise ValueError(f"beir path must be a folder with corpus.jsonl, got file {root}")
    corpus_file = check_file(root / "corpus.jsonl", "corpus.jsonl")
    query_file = check_file(root / "queries.jsonl", "queries.jsonl")
    qrels_file = check_file(root / "qrels" / f"{split}.tsv", f"qrels/{split}.tsv")
    doc_ids, doc_texts = _read_beir_texts(corpus_file, "document", _beir_doc_text)
    q_ids, q_texts = _read_beir_texts(query_file, "query", _beir_query_text)
    qrels, skipped = read_beir_qrels(qrels_file, q_ids, doc_ids)
    if skipped:
        warnings.warn(
            f"{qrels_file}: skipped {skipped} qrels rows naming a query or document "
            f"that is not in queries.jsonl / corpus.jsonl",
            stacklevel=3,
        )
    return BeirTexts(root.name, corpus_file, query_file, doc_ids, doc_texts, q_ids, q_texts, qrels)
