"""Resources bounded by the data: huge k, ids at the int64 limit, files changed under a map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.index import MUVERA, FilteredIndex, index_factory, load_index
from embedlab.index._base import MAX_PADDING
from embedlab.index.chamfer import chamfer_search
from embedlab.index.io import data_folder

SPECS = ["Flat", "Int8", "Binary", "PQ4", "BEBR2", "Binary,Rerank(Flat)", "Matryoshka8"]


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)


@pytest.mark.parametrize("spec", SPECS)
def test_huge_k_allocates_by_the_index_size(spec: str, x: np.ndarray) -> None:
    index = index_factory(16, spec)
    index.train(x)
    index.add(x)
    s, ids = index.search(x[:3], 10**12)
    assert s.shape == ids.shape == (3, MAX_PADDING)
    assert (ids[:, :300] >= 0).all() and (ids[:, 300:] == -1).all()
    s, ids = index.search(x[:3], 310)  # a small k past ntotal still pads to k (as faiss)
    assert ids.shape == (3, 310) and (ids[:, 300:] == -1).all()


def test_huge_k_filtered_and_multivector(x: np.ndarray) -> None:
    f = FilteredIndex(16)
    f.add(x, attrs={"lang": ["en"] * 300})
    assert f.search(x[:2], 10**12, {"lang": "en"})[1].shape == (2, MAX_PADDING)
    sets = [x[i : i + 3] for i in range(10)]
    mv = index_factory(16, "MUVERA(r=2,k=2,p=4),Rerank(Chamfer)")
    assert isinstance(mv, MUVERA)
    mv.add_multi(sets)
    assert mv.search_multi(sets[:2], 10**12)[1].shape == (2, MAX_PADDING)
    assert chamfer_search(sets[:2], sets, 10**12)[1].shape == (2, MAX_PADDING)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (np.array([2**63], dtype=np.uint64), r"ids must be integers in \[0, 2\*\*63 - 1\]"),
        ([2**64], r"ids must be integers in \[0, 2\*\*63 - 1\], got 18446744073709551616"),
        ([-(2**63)], r"ids must be >= 0"),
    ],
)
def test_ids_beyond_int64_are_refused(ids: object, message: str, x: np.ndarray) -> None:
    index = index_factory(16, "Flat")
    with pytest.raises(ValueError, match=message):
        index.add(x[:1], ids=ids)
    assert index.ntotal == 0


def test_ids_at_the_int64_limit(tmp_path: Path, x: np.ndarray) -> None:
    index = index_factory(16, "Flat")
    top = 2**63 - 1
    index.add(x[:1], ids=[top])
    with pytest.raises(ValueError, match=r"cannot give 1 vectors sequential ids after id"):
        index.add(x[1:2])
    index.add(x[1:2], ids=[5])
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    assert loaded.ids.tolist() == [top, 5]
    assert loaded.search(x[:1], 1)[1][0, 0] == top


@pytest.mark.parametrize("spec", ["Binary,Rerank(Flat)", "MUVERA(r=2,k=2,p=4),Rerank(Chamfer)"])
def test_truncated_mapped_file_is_an_error_not_sigbus(
    tmp_path: Path, x: np.ndarray, spec: str
) -> None:
    index = index_factory(16, spec)
    sets = [x[i : i + 3] for i in range(40)]
    if isinstance(index, MUVERA):
        index.add_multi(sets)
    else:
        index.add(x)
    index.save(tmp_path / "ix")
    live = load_index(tmp_path / "ix")
    name = "tokens.npy" if isinstance(index, MUVERA) else "vectors.npy"
    with open(data_folder(tmp_path / "ix") / name, "r+b") as fh:
        fh.truncate(128)
    for victim in (index, live):  # the saving index maps the saved file too
        with pytest.raises(ValueError, match=rf"{name} was truncated to 128 bytes while"):
            if isinstance(victim, MUVERA):
                victim.search_multi(sets[:2], 3)
            else:
                victim.search(x[:2], 3)
        with pytest.raises(ValueError, match=r"was truncated"):
            victim.save(tmp_path / "again")  # a save refuses too, instead of dying
    del index, live  # drop the maps before pytest looks at the frame
