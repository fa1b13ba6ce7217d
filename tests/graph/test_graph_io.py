"""Graph loaders: edge lists, .mat, Planetoid and the restricted unpickler."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from embedlab.graph import load_edgelist, load_graph, load_mat, load_planetoid, restricted_load


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_integer_ids_with_gaps_are_mapped_to_dense_rows(tmp_path: Path) -> None:
    g = load_edgelist(_write(tmp_path / "e.tsv", "# comment\n0\t1\n1 5\n\n5,0  # inline\n"))
    assert g.adj.shape == (3, 3)
    assert g.node_ids == ["0", "1", "5"]  # numeric order
    assert g.n_edges == 3
    assert (g.adj != g.adj.T).nnz == 0
    assert g.adj[1, 2] == 1.0  # edge 1 - 5


def test_dense_integer_ids_keep_row_i_is_node_i(tmp_path: Path) -> None:
    g = load_edgelist(_write(tmp_path / "e.tsv", "2 0\n1 2\n"))
    assert g.node_ids is None and g.adj.shape == (3, 3)
    assert g.adj[0, 2] == 1.0 and g.adj[1, 2] == 1.0 and g.adj[0, 1] == 0.0


def test_huge_integer_ids_cost_one_row_each(tmp_path: Path) -> None:
    # regression: id 10**12 used to size a (10**12 + 1)^2 matrix (about 7 TiB of indptr)
    g = load_edgelist(_write(tmp_path / "e.tsv", f"{10**12} 3\n3 {10**40}\n007 3\n"))
    assert g.adj.shape == (4, 4)
    assert g.node_ids == ["3", "7", str(10**12), str(10**40)]
    assert g.n_edges == 3
    assert g.adj[0, 2] == 1.0 and g.adj[0, 3] == 1.0 and g.adj[0, 1] == 1.0


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "e.tsv"
    path.write_bytes(b"0 1\n1 2\n2 \xff3\n")
    with pytest.raises(ValueError, match=r"e\.tsv line 3: not valid UTF-8 text \(byte 0xff"):
        load_edgelist(path)


def test_string_ids_are_mapped_in_first_seen_order(tmp_path: Path) -> None:
    g = load_edgelist(_write(tmp_path / "e.csv", "bob,alice\nalice,carol\n7,bob\n"))
    assert g.node_ids == ["bob", "alice", "carol", "7"]
    assert g.adj.shape == (4, 4)
    assert g.adj[0, 1] == 1 and g.adj[1, 2] == 1 and g.adj[3, 0] == 1


def test_duplicates_merged_last_weight_wins(tmp_path: Path) -> None:
    g = load_edgelist(_write(tmp_path / "w.txt", "0 1 2.0\n1 0 3.5\n1 2 1\n0 1 4\n"))
    assert g.n_edges == 2
    assert g.adj[0, 1] == 4.0 and g.adj[1, 0] == 4.0
    u = load_edgelist(_write(tmp_path / "u.txt", "0 1\n1 0\n0 1\n"))
    assert u.adj.nnz == 2 and u.adj.data.max() == 1.0


def test_self_loops_dropped_with_warning(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="dropped 2 self-loop"):
        g = load_edgelist(_write(tmp_path / "l.tsv", "0 0\n0 1\n2 2\n"))
    assert g.adj.shape == (3, 3)
    assert g.adj.diagonal().sum() == 0
    assert g.n_edges == 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0 1\n1 2 3 4\n", r"e.tsv line 2: expected 'u v' or 'u v weight', got 4"),
        ("0 1\n7\n", r"e.tsv line 2: expected 'u v' or 'u v weight', got 1"),
        ("0 1 1.0\n1 2\n", r"e.tsv line 2: every line must have a weight column"),
        ("# h\n0 1 abc\n", r"e.tsv line 2: weight must be a number, got 'abc'"),
        ("0 1 -1\n", r"e.tsv line 1: weight must be finite and > 0"),
        ("# only comments\n", r"holds no edges"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_edgelist(_write(tmp_path / "e.tsv", text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="edge list does not exist"):
        load_edgelist(tmp_path / "nope.tsv")


def test_mat_roundtrip_multilabel(tmp_path: Path) -> None:
    net = sp.csc_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    group = sp.csc_matrix(np.array([[1, 0], [1, 1], [0, 1]], dtype=float))
    scipy.io.savemat(tmp_path / "g.mat", {"network": net, "group": group})
    g = load_mat(tmp_path / "g.mat")
    assert g.adj.format == "csr" and g.adj.shape == (3, 3)
    assert g.labels is not None and g.labels.dtype == np.int8
    np.testing.assert_array_equal(g.labels, group.toarray())


def test_mat_without_keys_lists_keys(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "wrong.mat", {"A": np.eye(2), "labels": np.ones(2)})
    with pytest.raises(ValueError, match=r"wrong.mat has no 'network'; keys: 'A', 'labels'"):
        load_mat(tmp_path / "wrong.mat")


def test_mat_asymmetric_and_self_loops_warn(tmp_path: Path) -> None:
    net = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)
    scipy.io.savemat(tmp_path / "d.mat", {"network": sp.csc_matrix(net)})
    with pytest.warns(UserWarning) as rec:
        g = load_mat(tmp_path / "d.mat")
    messages = " ".join(str(w.message) for w in rec)
    assert "not symmetric" in messages and "self-loop" in messages
    assert (g.adj != g.adj.T).nnz == 0 and g.adj.diagonal().sum() == 0


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_os_system() -> None:
    payload = pickle.dumps(_Evil(), protocol=4)
    with pytest.raises(ValueError, match=r"refusing to load posix\.system|refusing to load os"):
        restricted_load(payload, where="evil")


def test_restricted_unpickler_refuses_builtins_eval() -> None:
    payload = b"c__builtin__\neval\n(S'1+1'\ntR."
    with pytest.raises(ValueError, match=r"evil: refusing to load __builtin__\.eval"):
        restricted_load(payload, where="evil")


def test_restricted_unpickler_loads_numpy_and_scipy() -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(restricted_load(pickle.dumps(arr, protocol=4)), arr)
    mat = sp.csr_matrix(arr)
    back = restricted_load(pickle.dumps(mat, protocol=4))
    assert (sp.csr_matrix(back) != mat).nnz == 0


def _planetoid(folder: Path) -> None:
    """A 4-node Planetoid dataset: 2 train nodes (x), 2 test nodes stored out of order."""
    x = sp.csr_matrix(np.eye(4)[:2])
    tx = sp.csr_matrix(np.eye(4)[[3, 2]])  # rows for test ids 3, 2 (reordered)
    ally = np.array([[1, 0], [0, 1]])
    ty = np.array([[0, 1], [1, 0]])  # node 3 -> class 1, node 2 -> class 0
    graph = {0: [1], 1: [0, 2], 2: [1, 3, 3], 3: [2]}
    for name, obj in [("x", x), ("allx", x), ("tx", tx), ("y", ally), ("ally", ally), ("ty", ty)]:
        (folder / f"ind.toy.{name}").write_bytes(pickle.dumps(obj, protocol=4))
    (folder / "ind.toy.graph").write_bytes(pickle.dumps(graph, protocol=4))
    (folder / "ind.toy.test.index").write_text("3\n2\n")


def test_planetoid_test_reordering(tmp_path: Path) -> None:
    _planetoid(tmp_path)
    g = load_planetoid(tmp_path, "toy")
    assert g.adj.shape == (4, 4) and g.n_edges == 3
    np.testing.assert_array_equal(g.labels, [0, 1, 0, 1])
    assert g.features is not None
    np.testing.assert_array_equal(g.features.toarray(), np.eye(4))


def test_planetoid_refuses_malicious_file(tmp_path: Path) -> None:
    _planetoid(tmp_path)
    (tmp_path / "ind.toy.graph").write_bytes(pickle.dumps(_Evil(), protocol=4))
    with pytest.raises(ValueError, match=r"ind\.toy\.graph: refusing to load"):
        load_planetoid(tmp_path, "toy")


def test_load_graph_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data must look like KIND:PATH"):
        load_graph("blogcatalog")
    with pytest.raises(ValueError, match="data kind must be one of"):
        load_graph("pajek:x.net")
    g = load_graph(f"edges:{_write(tmp_path / 'e.tsv', '0 1')}")
    assert g.adj.shape == (2, 2)


@pytest.mark.parametrize(
    ("part", "payload", "match"),
    [
        ("graph", b"", r"ind\.toy\.graph: not a pickle, got an empty file"),
        ("tx", b"\x80\x04\x95", r"ind\.toy\.tx: not a valid pickle \(not enough data"),
        ("ally", b"garbage!", r"ind\.toy\.ally: (not a valid pickle|pickle data was truncated)"),
        ("ty", pickle.dumps([[0, 1], [1, 0]]), r"ind\.toy\.ty: expected a 2-D numeric array"),
        ("graph", pickle.dumps([1, 2]), r"ind\.toy\.graph: expected a dict of neighbour lists"),
        ("graph", pickle.dumps({0: [10**12]}), r"node ids must be in \[0, 4\).*got 1000000000000"),
        ("graph", pickle.dumps({0: ["a"]}), r"ind\.toy\.graph: node ids must be integers, got 'a'"),
    ],
)
def test_planetoid_bad_files_name_the_file(
    tmp_path: Path, part: str, payload: bytes, match: str
) -> None:
    _planetoid(tmp_path)
    (tmp_path / f"ind.toy.{part}").write_bytes(payload)
    with pytest.raises(ValueError, match=match):
        load_planetoid(tmp_path, "toy")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"ind\.toy\.test\.index must list at least one test node, got none"),
        ("3\nthree\n", r"ind\.toy\.test\.index line 2: a test index must be an integer >= 0"),
        ("3\n-2\n", r"line 2: a test index must be an integer >= 0, got '-2'"),
        ("3\n3\n", r"test nodes must not repeat, got 3 twice"),
        ("3\n1\n", r"test nodes must be >= 2 \(rows below are allx\), got 1"),
        ("3\n", r"expected 2 test nodes \(one per tx row\), got 1"),
        ("2\n1000000000000\n", r"has 999999999997 nodes without a tx row; at most 2"),
    ],
)
def test_planetoid_bad_test_index(tmp_path: Path, text: str, match: str) -> None:
    _planetoid(tmp_path)
    (tmp_path / "ind.toy.test.index").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_planetoid(tmp_path, "toy")


def test_planetoid_huge_array_shape_in_pickle_is_refused(tmp_path: Path) -> None:
    _planetoid(tmp_path)
    # numpy's _reconstruct allocates the shape it is given: 2**40 bytes from a tiny file
    payload = (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85C\x01b\x87R."
    )
    (tmp_path / "ind.toy.ty").write_bytes(payload)
    with pytest.raises(ValueError, match=r"ind\.toy\.ty: .*larger than the \d+-byte file"):
        load_planetoid(tmp_path, "toy")


def test_planetoid_test_range_with_gaps_loads_like_citeseer(tmp_path: Path) -> None:
    # regression: test.index 5, 3 with node 4 missing (an isolated Citeseer-like node) used to
    # fail with "row index out of bounds"; the gap gets zero features and label -1
    x = sp.csr_matrix(np.eye(6)[:3])  # allx: nodes 0, 1, 2
    tx = sp.csr_matrix(np.eye(6)[[5, 3]])  # rows for test ids 5, 3
    ally = np.array([[1, 0], [0, 1], [1, 0]])
    ty = np.array([[0, 1], [1, 0]])
    graph = {0: [1], 1: [0, 2], 2: [1, 3], 3: [2, 5], 4: [], 5: [3]}
    for name, obj in [("x", x), ("allx", x), ("tx", tx), ("y", ally), ("ally", ally), ("ty", ty)]:
        (tmp_path / f"ind.cs.{name}").write_bytes(pickle.dumps(obj, protocol=4))
    (tmp_path / "ind.cs.graph").write_bytes(pickle.dumps(graph, protocol=4))
    (tmp_path / "ind.cs.test.index").write_text("5\n3\n")
    g = load_planetoid(tmp_path, "cs")
    assert g.adj.shape == (6, 6) and g.n_edges == 4 and g.adj[4].nnz == 0
    np.testing.assert_array_equal(g.labels, [0, 1, 0, 0, -1, 1])
    assert g.features is not None
    expected = np.eye(6)
    expected[4] = 0.0
    np.testing.assert_array_equal(g.features.toarray(), expected)


def test_mat_damaged_and_oversized_group(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 200 + b"\xff" * 50)
    with pytest.raises(ValueError, match=r"bad\.mat: not a readable MATLAB file"):
        load_mat(bad)
    net = sp.csc_matrix(np.array([[0, 1], [1, 0]], dtype=float))
    # a compressed file of a few KB announcing a 1,000 x 100,000 dense label matrix
    big_net = sp.csc_matrix(([1.0, 1.0], ([0, 1], [1, 0])), shape=(1000, 1000))
    wide = sp.csc_matrix(([1.0], ([0], [0])), shape=(1000, 100_000))
    scipy.io.savemat(
        tmp_path / "wide.mat", {"network": big_net, "group": wide}, do_compression=True
    )
    with pytest.raises(ValueError, match=r"wide\.mat:group of shape \(1000, 100000\) is too large"):
        load_mat(tmp_path / "wide.mat")
    scipy.io.savemat(tmp_path / "cls.mat", {"network": net, "group": np.array([[0.5], [1.0]])})
    with pytest.raises(ValueError, match=r"cls\.mat:group: class ids must be integers >= -1"):
        load_mat(tmp_path / "cls.mat")
    scipy.io.savemat(tmp_path / "s.mat", {"network": "text"})
    with pytest.raises(ValueError, match=r"s\.mat:network must be a 2-D numeric matrix"):
        load_mat(tmp_path / "s.mat")


def _array_pickle(shape: bytes, dtype: bytes, raw: bytes) -> bytes:
    """A protocol-2 pickle of an array with the given (hand-written) state."""
    return (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
        b"(K\x01" + shape + b"cnumpy\ndtype\nU" + bytes([len(dtype)]) + dtype + b"K\x00K\x01\x87R"
        b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + raw + b"tb."
    )


def test_restricted_unpickler_checks_array_state_before_numpy() -> None:
    ok = restricted_load(_array_pickle(b"K\x02\x85", b"i4", b"U\x08" + bytes(8)))
    assert ok.tolist() == [0, 0] and type(ok) is np.ndarray
    # numpy itself crashes (segfault) on an object array whose list is shorter than its shape
    objects = _array_pickle(b"J\x00\xa3\xe1\x11\x85", b"O8", b"]q\x00(K\x01K\x02e")
    with pytest.raises(ValueError, match=r"only plain numeric dtypes are allowed, got 'O8'"):
        restricted_load(objects, where="evil")
    short = _array_pickle(b"J\x00\xa3\xe1\x11\x85", b"f8", b"U\x02ab")
    with pytest.raises(ValueError, match=r"evil: array of shape \(300000000,\).*needs 2400000000"):
        restricted_load(short, where="evil")
    direct = b"\x80\x02cnumpy\nndarray\nJ\x00\xa3\xe1\x11\x85\x85R."  # ndarray((3e8,))
    with pytest.raises(ValueError, match=r"refusing to call numpy\.ndarray"):
        restricted_load(direct, where="evil")
    sparse = b"\x80\x02cscipy.sparse._csr\ncsr_matrix\n(J\x00\xe4\x0bTK\x01\x86tR."
    with pytest.raises(ValueError, match=r"refusing to call csr_matrix"):
        restricted_load(sparse, where="evil")


def test_mat_network_with_a_huge_row_count_is_refused_before_converting(tmp_path: Path) -> None:
    # regression: a damaged dims element gave a (1191182339, 3) sparse network, whose CSR
    # conversion allocated a 9 GB index pointer
    net = sp.csc_matrix(([1.0, 1.0], ([0, 1], [1, 0])), shape=(1_191_182_339, 3))
    scipy.io.savemat(tmp_path / "tall.mat", {"network": net})
    with pytest.raises(ValueError, match=r"tall\.mat:network must be square .* \(1191182339, 3\)"):
        load_mat(tmp_path / "tall.mat")


def test_mat_damaged_structure_is_refused_before_scipy_reads_it(tmp_path: Path) -> None:
    # regression: a dims element of 27 bytes made scipy's compiled reader segfault
    net = sp.csc_matrix(np.array([[0, 1], [1, 0]], dtype=float))
    scipy.io.savemat(tmp_path / "ok.mat", {"network": net})
    data = bytearray((tmp_path / "ok.mat").read_bytes())
    assert data[152:160] == struct.pack("<II", 5, 8)  # the dims tag of the first matrix
    data[156] = 27
    (tmp_path / "dims.mat").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"dims\.mat: damaged MATLAB file \(dimensions: 27 bytes"):
        load_mat(tmp_path / "dims.mat")


def test_restricted_load_checks_lengths_before_allocating() -> None:
    # regression: BYTEARRAY8 announcing 8e18 bytes made CPython try to allocate them
    payload = b"\x80\x05\x96" + (8_101_260_420_109_341_843).to_bytes(8, "little") + b"xy."
    with pytest.raises(
        ValueError, match=r"evil: not a valid pickle \(expected 8101260420109341843"
    ):
        restricted_load(payload, where="evil")
