"""Fuzz every data loader with random bytes and with mutations of small valid files.

The property: a loader either returns a well-formed dataset (shapes consistent, ids in
range) or raises ``ValueError`` whose message names the file; never another exception,
never a hang (each call gets 10 s). The cases run per loader, and how many ended in a
clear error or a dataset, are printed at the end of the module (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import signal
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest
from _fuzz_inputs import (  # tests/data is on sys.path (pytest's rootdir-relative import)
    MUTATIONS,
    avazu_text,
    criteo_text,
    edges_text,
    libfm_text,
    mat_bytes,
    mnist_files,
    movielens_dir_texts,
    movielens_joined_text,
    mutate,
    planetoid_files,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedlab.data import (
    CTRDataset,
    CTRSplits,
    LabeledData,
    load_avazu,
    load_criteo,
    load_libfm,
    load_mnist,
    load_movielens,
    load_movielens_sequences,
    read_idx,
)
from embedlab.graph import Graph, load_edgelist, load_mat, load_planetoid

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples"
COUNTS: defaultdict[str, Counter[str]] = defaultdict(Counter)
# EMBEDLAB_FUZZ_EXAMPLES=2000 explores further (random, not derandomized)
_EXPLORE = int(os.environ.get("EMBEDLAB_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_EXPLORE or 60,
    deadline=None,
    derandomize=not _EXPLORE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the property ---------------------------------------------------------------------------


class _Hang(BaseException):  # BaseException: a loader's `except Exception` cannot swallow it
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise _Hang(f"loader still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run(loader: str, call: Callable[[], Any], check: Callable[[Any], None], where: Path) -> None:
    """Call the loader; a dataset must pass ``check``, an error must be a ValueError naming
    ``where`` (a file, or the folder of a multi-file dataset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self-loops, asymmetric .mat: warned, not errors
        try:
            with _time_limit(10.0):
                out = call()
        except ValueError as exc:
            assert str(where) in str(exc), f"{loader}: the error does not name {where}: {exc}"
            COUNTS[loader]["clear error"] += 1
            return
    check(out)
    COUNTS[loader]["dataset"] += 1


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print("\nloader fuzz cases (clear ValueError / well-formed dataset):")
    for loader in sorted(COUNTS):
        c = COUNTS[loader]
        total = c["clear error"] + c["dataset"]
        print(
            f"  {loader:<22} {total:>5} cases: {c['clear error']:>5} errors, {c['dataset']:>5} ok"
        )


def _check_ctr(ds: CTRDataset) -> None:
    n = len(ds.labels)
    assert n >= 1 and ds.ids.shape == (n, len(ds.fields)) and ds.ids.dtype == np.int64
    cards = np.array([f.cardinality for f in ds.fields])
    assert (ds.ids >= 0).all() and (ds.ids < cards).all()
    assert np.isin(ds.labels, (0.0, 1.0)).all()


def _check_ctr_list(parts: list[CTRDataset]) -> None:
    for ds in parts:
        _check_ctr(ds)


def _check_splits(splits: CTRSplits) -> None:
    for ds in (splits.train, splits.valid, splits.test):
        _check_ctr(ds)
        assert ds.history is not None and ds.history.shape[0] == len(ds)
        card = ds.fields[1].cardinality
        assert ((ds.history == -1) | ((ds.history >= 0) & (ds.history < card))).all()


def _check_graph(g: Graph) -> None:
    n = g.n_nodes
    assert g.adj.shape == (n, n) and (g.adj != g.adj.T).nnz == 0
    assert g.adj.diagonal().sum() == 0 and np.isfinite(g.adj.data).all()
    if g.adj.nnz:
        assert g.adj.indices.max() < n
    if g.labels is not None:
        assert g.labels.shape[0] == n
    if g.features is not None:
        assert g.features.shape[0] == n
    if g.node_ids is not None:
        assert len(g.node_ids) == n == len(set(g.node_ids))


def _check_labeled(data: LabeledData) -> None:
    assert data.x.ndim == 4 and data.x.shape[0] == data.y.shape[0] >= 1
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0


def _check_idx(array: np.ndarray) -> None:
    assert array.ndim >= 1 and array.size == math.prod(array.shape)


# --- one runner per loader --------------------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run_libfm(folder: Path, data: bytes) -> None:
    f = _write(folder / "libfm" / "train.libfm", data)
    _run("libfm", lambda: load_libfm([f]), _check_ctr_list, f)


def run_criteo(folder: Path, data: bytes) -> None:
    f = _write(folder / "criteo" / "day.txt", data)
    _run("criteo", lambda: load_criteo(f, min_count=2, chunksize=3), _check_ctr, f)


def run_avazu(folder: Path, data: bytes) -> None:
    f = _write(folder / "avazu" / "train.csv", data)
    _run("avazu", lambda: load_avazu(f, min_count=1, chunksize=4), _check_ctr, f)


def run_movielens_joined(folder: Path, data: bytes) -> None:
    f = _write(folder / "ml-joined" / "ratings.csv", data)
    _run("movielens (joined)", lambda: load_movielens(f), _check_ctr, f)


def run_movielens_dir(folder: Path, files: dict[str, bytes]) -> None:
    d = folder / "ml-dir"
    for name, data in files.items():
        _write(d / name, data)
    _run("movielens (directory)", lambda: load_movielens(d), _check_ctr, d)


def run_movielens_seq(folder: Path, data: bytes) -> None:
    f = _write(folder / "ml-seq" / "ratings.csv", data)

    def call() -> CTRSplits:
        return load_movielens_sequences(f, max_len=3, valid_fraction=0.2, test_fraction=0.2)

    _run("movielens-seq", call, _check_splits, f)


def run_mnist(folder: Path, files: dict[str, bytes]) -> None:
    d = folder / "mnist"
    for old in d.glob("t10k-*") if d.exists() else ():
        old.unlink()
    for name, data in files.items():
        _write(d / ("t10k-labels-idx1-ubyte" if name == "labels" else name), data)
    _run("mnist", lambda: load_mnist(d), _check_labeled, d)


def run_idx(folder: Path, data: bytes) -> None:
    f = _write(folder / "idx" / "x-idx3-ubyte.gz", data)
    _run("read_idx", lambda: read_idx(f), _check_idx, f)


def run_edgelist(folder: Path, data: bytes) -> None:
    f = _write(folder / "edges" / "graph.tsv", data)
    _run("edgelist", lambda: load_edgelist(f), _check_graph, Path(f.name))


def run_planetoid(folder: Path, files: dict[str, bytes]) -> None:
    d = folder / "planetoid"
    for name, data in files.items():
        _write(d / name, data)
    _run("planetoid", lambda: load_planetoid(d, "toy"), _check_graph, d)


def run_mat(folder: Path, data: bytes) -> None:
    f = _write(folder / "mat" / "net.mat", data)
    _run("mat", lambda: load_mat(f), _check_graph, Path(f.name))


# --- the tests --------------------------------------------------------------------------------

TEXT_LOADERS: dict[str, tuple[Callable[[int], bytes], Callable[[Path, bytes], None]]] = {
    "libfm": (libfm_text, run_libfm),
    "criteo": (criteo_text, run_criteo),
    "avazu": (avazu_text, run_avazu),
    "movielens_joined": (movielens_joined_text, run_movielens_joined),
    "movielens_seq": (movielens_joined_text, run_movielens_seq),
    "edgelist": (edges_text, run_edgelist),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("loader", sorted(TEXT_LOADERS))
def test_valid_bases_load(folder: Path, loader: str) -> None:
    make, run = TEXT_LOADERS[loader]
    loaded = lambda: sum(c["dataset"] for c in COUNTS.values())  # noqa: E731
    before = loaded()
    for seed in range(4):
        run(folder, make(seed))
    assert loaded() == before + 4  # every base is valid, so mutations start from a dataset


@pytest.mark.parametrize("loader", sorted(TEXT_LOADERS))
@FUZZ
@given(seed=st.integers(0, 3), ops=MUTATIONS)
def test_mutated_text_files(
    folder: Path, loader: str, seed: int, ops: list[tuple[str, int, bytes]]
) -> None:
    make, run = TEXT_LOADERS[loader]
    run(folder, mutate(make(seed), ops))


@pytest.mark.parametrize("loader", sorted(TEXT_LOADERS))
@settings(FUZZ, max_examples=_EXPLORE or 25)
@given(data=st.binary(max_size=300))
def test_random_bytes(folder: Path, loader: str, data: bytes) -> None:
    TEXT_LOADERS[loader][1](folder, data)


def test_valid_multi_file_bases_load(folder: Path) -> None:
    loaded = lambda: sum(c["dataset"] for c in COUNTS.values())  # noqa: E731
    before = loaded()
    for seed in range(2):
        run_movielens_dir(folder, movielens_dir_texts(seed))
        run_mnist(folder, mnist_files(seed))
        run_idx(folder, next(v for k, v in mnist_files(seed).items() if k.startswith("t10k")))
        run_planetoid(folder, planetoid_files())
        run_mat(folder, mat_bytes(folder, seed))
    assert loaded() == before + 10


@FUZZ
@given(seed=st.integers(0, 3), which=st.sampled_from(["ratings.csv", "movies.csv"]), ops=MUTATIONS)
def test_mutated_movielens_directory(
    folder: Path, seed: int, which: str, ops: list[tuple[str, int, bytes]]
) -> None:
    files = movielens_dir_texts(seed)
    files[which] = mutate(files[which], ops)
    run_movielens_dir(folder, files)


@FUZZ
@given(seed=st.integers(0, 3), image_file=st.booleans(), ops=MUTATIONS)
def test_mutated_mnist(
    folder: Path, seed: int, image_file: bool, ops: list[tuple[str, int, bytes]]
) -> None:
    files = mnist_files(seed)
    key = next(k for k in files if k.startswith("t10k")) if image_file else "labels"
    files[key] = mutate(files[key], ops)
    run_mnist(folder, files)


@FUZZ
@given(seed=st.integers(0, 3), ops=MUTATIONS, raw=st.binary(max_size=64))
def test_mutated_and_random_idx(
    folder: Path, seed: int, ops: list[tuple[str, int, bytes]], raw: bytes
) -> None:
    images = next(v for k, v in mnist_files(seed).items() if k.startswith("t10k"))
    run_idx(folder, mutate(images, ops))
    run_idx(folder, raw)
    run_idx(folder, gzip.compress(raw, mtime=0))


@FUZZ
@given(which=st.sampled_from(sorted(planetoid_files())), ops=MUTATIONS)
def test_mutated_planetoid(folder: Path, which: str, ops: list[tuple[str, int, bytes]]) -> None:
    files = planetoid_files()
    files[which] = mutate(files[which], ops)
    run_planetoid(folder, files)


@FUZZ
@given(seed=st.integers(0, 1), ops=MUTATIONS)
def test_mutated_mat(folder: Path, seed: int, ops: list[tuple[str, int, bytes]]) -> None:
    run_mat(folder, mutate(mat_bytes(folder, seed), ops))


def _sample_head(name: str, n_lines: int = 25) -> bytes:
    with (SAMPLES / name).open("rb") as f:
        return b"".join(f.readline() for _ in range(n_lines))


SAMPLE_RUNNERS: dict[str, Callable[[Path, bytes], None]] = {
    "criteo_sample.txt": run_criteo,
    "avazu_sample.txt": run_avazu,
    "movielens_sample.txt": run_movielens_joined,
}


@pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/data/samples not available")
@pytest.mark.parametrize("sample", sorted(SAMPLE_RUNNERS))
@settings(FUZZ, max_examples=_EXPLORE or 30)
@given(ops=MUTATIONS)
def test_mutated_shared_samples(
    folder: Path, sample: str, ops: list[tuple[str, int, bytes]]
) -> None:
    SAMPLE_RUNNERS[sample](folder, mutate(_sample_head(sample), ops))
