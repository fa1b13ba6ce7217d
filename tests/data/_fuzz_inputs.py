"""Inputs for the loader fuzz suite: mutations of bytes and small valid files of each format."""

from __future__ import annotations

import gzip
import pickle
import struct
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp
from hypothesis import strategies as st

# --- mutations ------------------------------------------------------------------------------

SNIPPETS = [
    b",",
    b'"',
    b"\t",
    b"\n",
    b"\r\n",
    b"\r",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\x00",
    b"1e30",
    b"2e30",
    b"99999999999999999999",
    b"9" * 400,
    b"-1",
    b"nan",
    b"inf",
    b" ",
    b":",
    b"#",
    b"\xef\xbb\xbf",
    b"7",
    b"0",
    b"-",
    b".",
    b'""',
    b"|",
    b"\xf0\x9f\x98\x80",
]
_POS = st.integers(0, 1 << 16)
OPS = st.one_of(
    st.tuples(st.just("flip"), _POS, st.integers(1, 255).map(lambda b: bytes([b]))),
    st.tuples(st.just("truncate"), _POS, st.just(b"")),
    st.tuples(
        st.just("insert"), _POS, st.sampled_from(SNIPPETS) | st.binary(min_size=1, max_size=6)
    ),
    st.tuples(st.just("delete"), _POS, st.integers(1, 24).map(lambda k: bytes(k))),
    st.tuples(st.just("repeat_line"), _POS, st.just(b"")),
)
MUTATIONS = st.lists(OPS, min_size=1, max_size=4)


def mutate(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    """Apply byte flips, truncations, insertions, deletions and repeated lines."""
    out = bytearray(data)
    for op, pos, arg in ops:
        at = pos % (len(out) + 1)
        if op == "flip" and out:
            out[at % len(out)] ^= arg[0]
        elif op == "truncate":
            del out[at:]
        elif op == "insert":
            out[at:at] = arg
        elif op == "delete":
            del out[at : at + len(arg)]
        elif op == "repeat_line":
            start = out.rfind(b"\n", 0, at) + 1
            end = out.find(b"\n", at)
            line = bytes(out[start : (len(out) if end < 0 else end + 1)])
            out[start:start] = line
    return bytes(out)


# --- small valid files ----------------------------------------------------------------------


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def libfm_text(seed: int) -> bytes:
    rng = _rng(seed)
    lines = [
        f"{rng.choice(['1', '-1', '0', '+1'])} {rng.integers(0, 4)}:1 "
        f"{4 + rng.integers(0, 4)}:1 {8 + rng.integers(0, 3)}:0.5"
        for _ in range(8)
    ]
    return ("\n".join(lines) + "\n").encode()


def criteo_text(seed: int) -> bytes:
    rng = _rng(seed)
    sep = "\t" if seed % 2 else ","
    header = ["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))]
    rows = [sep.join(header)] if seed % 2 == 0 else []
    for _ in range(8):
        ints = ["" if rng.random() < 0.2 else str(rng.integers(-2, 500)) for _ in range(13)]
        cats = ["" if rng.random() < 0.2 else f"{rng.integers(0, 2**32):08x}" for _ in range(26)]
        rows.append(sep.join([str(rng.integers(0, 2)), *ints, *cats]))
    return ("\n".join(rows) + "\n").encode()


AVAZU_HEADER = "id,click,hour,C1,banner_pos,site_id,device_ip,C14"


def avazu_text(seed: int) -> bytes:
    rng = _rng(seed)
    rows = [AVAZU_HEADER]
    for i in range(8):
        hour = f"1410{21 + rng.integers(0, 9)}{rng.integers(0, 24):02d}"
        rows.append(
            f"{10**18 + i},{rng.integers(0, 2)},{hour},1005,{rng.integers(0, 2)},"
            f"{rng.integers(0, 2**32):08x},{rng.integers(0, 2**32):08x},{rng.integers(0, 9)}"
        )
    return ("\n".join(rows) + "\n").encode()


TITLES = ['"Toy Story, The (1995)"', "Heat (1995)", '"Ideal Husband, An (1999)"', "Odd"]
GENRES = ["Comedy|Drama", "Action", "(no genres listed)", "Children's|Musical"]


def movielens_joined_text(seed: int) -> bytes:
    rng = _rng(seed)
    rows = ["user_id,movie_id,rating,timestamp,title,genres,zip"]
    for _ in range(12):
        m = int(rng.integers(0, 4))
        rows.append(
            f"{rng.integers(1, 4)},{m + 1},{rng.choice(['1', '2.5', '4', '5', '4.0'])},"
            f"{rng.integers(9 * 10**8, 10**9)},{TITLES[m]},{GENRES[m]},0{rng.integers(1000, 9999)}"
        )
    return ("\n".join(rows) + "\n").encode()


def movielens_dir_texts(seed: int) -> dict[str, bytes]:
    rng = _rng(seed)
    ratings = ["userId,movieId,rating,timestamp"]
    for _ in range(10):
        ratings.append(
            f"{rng.integers(1, 4)},{rng.integers(1, 6)},{rng.choice(['0.5', '3.5', '5.0'])},"
            f"{rng.integers(9 * 10**8, 10**9)}"
        )
    movies = ["movieId,title,genres"] + [
        f"{m + 1},{TITLES[m % 4]},{GENRES[m % 4]}" for m in range(5)
    ]
    return {
        "ratings.csv": ("\n".join(ratings) + "\n").encode(),
        "movies.csv": ("\n".join(movies) + "\n").encode(),
    }


def edges_text(seed: int) -> bytes:
    texts = [
        "# karate-like\n0 1\n1 2\n2 0\n2 3\n3 4\n",
        "0,1,2.5\n1,2,1\n2,0,0.5\n10,1,3\n",
        "alice bob\nbob carol\ncarol alice\n7 alice\n",
        "1\t5\n5\t1000000000000\n1000000000000\t1\n",
    ]
    return texts[seed % len(texts)].encode()


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    dims = b"".join(struct.pack(">I", n) for n in array.shape)
    return header + dims + array.astype(np.uint8).tobytes()


def mnist_files(seed: int) -> dict[str, bytes]:
    rng = _rng(seed)
    images = idx_bytes(rng.integers(0, 256, size=(3, 4, 4)))
    labels = idx_bytes(rng.integers(0, 10, size=3))
    if seed % 2:
        return {"t10k-images-idx3-ubyte.gz": gzip.compress(images, mtime=0), "labels": labels}
    return {"t10k-images-idx3-ubyte": images, "labels": labels}


def planetoid_files() -> dict[str, bytes]:
    x = sp.csr_matrix(np.eye(5, dtype=np.float32)[:2])
    tx = sp.csr_matrix(np.eye(5, dtype=np.float32)[[4, 2]])
    ally = np.array([[1, 0], [0, 1]], dtype=np.int32)
    ty = np.array([[0, 1], [1, 0]], dtype=np.int32)
    graph = defaultdict(list, {0: [1], 1: [0, 2], 2: [1, 4], 3: [], 4: [2]})
    parts = {"tx": tx, "ty": ty, "allx": x, "ally": ally, "graph": graph}
    files = {
        f"ind.toy.{k}": pickle.dumps(v, protocol=2 if k == "graph" else 4) for k, v in parts.items()
    }
    files["ind.toy.test.index"] = b"4\n2\n"
    return files


def mat_bytes(folder: Path, seed: int) -> bytes:
    net = sp.csc_matrix(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=float))
    group = sp.csc_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=float))
    scratch = folder / "scratch.mat"
    scipy.io.savemat(scratch, {"network": net, "group": group}, do_compression=bool(seed % 2))
    return scratch.read_bytes()
