"""``embedlab graph ...`` (FastRP, graphlet orbits) and ``embedlab bench graph``."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from embedlab._io import atomic_write_text
from embedlab._validation import check_choice, check_fraction, check_int
from embedlab.cli._common import (
    check_finite_float,
    check_out_dir,
    check_out_file,
    console,
    describe_error,
    fail,
    parse_floats,
    parse_ints,
    parse_specs,
    record_saver,
)
from embedlab.cli._flags import Quiet, Threads, apply_threads

__all__ = ["app", "bench_graph", "fastrp_command", "orbits_command"]

app = typer.Typer(help="Graph embeddings and graph statistics.", no_args_is_help=True)

PAPER_WEIGHTS_TEXT = "1,1,7.81,45.28"
GRAPH_HELP = "edge list (.tsv/.csv/.txt), a .mat file (network/group) or a Planetoid folder"


def _atomic_save(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through ``write(fh)`` into a temp file in the same folder, fsync, ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _npz_writer(mat: Any) -> Callable[[IO[bytes]], None]:
    import scipy.sparse as sp

    def write(fh: IO[bytes]) -> None:
        sp.save_npz(fh, mat, compressed=True)

    return write


def _load(path: Path) -> Any:
    from embedlab.graph.io import load_edgelist, load_mat, load_planetoid

    if path.is_dir():
        return load_planetoid(path)
    if path.suffix.lower() == ".mat":
        return load_mat(path)
    return load_edgelist(path)


def _write_mapping(out: Path, node_ids: list[str] | None) -> Path | None:
    if node_ids is None:
        return None
    target = out.with_name(out.name + ".nodes.tsv")
    atomic_write_text(target, "row\tid\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(node_ids)))
    return target


@app.command("fastrp")
def fastrp_command(
    edges: Annotated[Path, typer.Argument(help=GRAPH_HELP)],
    out: Annotated[Path, typer.Option("-o", "--out", help="output embeddings (.npy)")],
    dim: Annotated[int, typer.Option(help="embedding dimension")] = 128,
    weights: Annotated[
        str, typer.Option(help="comma-separated iteration weights alpha_1..alpha_q")
    ] = PAPER_WEIGHTS_TEXT,
    beta: Annotated[
        float, typer.Option(help="degree normalisation exponent (L = D^beta)")
    ] = -0.628,
    normalization: Annotated[
        bool, typer.Option(help="L2-normalise the rows of each power before summing")
    ] = True,
    seed: Annotated[int, typer.Option(help="seed of the random projection")] = 0,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """FastRP node embeddings of EDGES -> an (n_nodes, dim) float32 .npy.

    Row i is node i only when the ids are exactly 0..n-1; otherwise (string ids, or integer
    ids with gaps such as 0, 1, 2, 5) OUT.nodes.tsv maps each row to its node id.

    Example: embedlab graph fastrp edges.tsv -o emb.npy --dim 512 --weights 1,1,7.81,45.28
    """
    apply_threads(threads)
    from embedlab.graph.fastrp import fastrp

    try:
        check_int("--dim", dim, min_value=1)
        alphas = parse_floats("--weights", weights)
        check_finite_float("--beta", beta)
        check_int("--seed", seed, min_value=0)
        check_out_file("--out", out)
        graph = _load(edges)
        t0 = time.perf_counter()
        emb = fastrp(
            graph.adj,
            dim,
            weights=alphas,
            beta=beta,
            normalization=normalization,
            seed=seed,
        )
        elapsed = time.perf_counter() - t0
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(describe_error(exc)) from None
    _atomic_save(out, lambda fh: np.save(fh, emb, allow_pickle=False))
    mapping = _write_mapping(out, graph.node_ids)
    if quiet:
        return
    console.print(
        f"{graph.n_nodes:,} nodes, {graph.n_edges:,} edges -> {out} {emb.shape} in {elapsed:.2f} s",
        highlight=False,
    )
    if mapping is not None:
        console.print(f"node ids were mapped; row -> id written to {mapping}", highlight=False)


@app.command("orbits")
def orbits_command(
    edges: Annotated[Path, typer.Argument(help=GRAPH_HELP)],
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder")],
    hops: Annotated[
        str, typer.Option(help="comma-separated hops to compute (1: 19, 2: 8, 3: 1 matrices)")
    ] = "1,2,3",
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """The 28 graphlet-orbit adjacency matrices (GRADCO): one .npz each plus index.json.

    Example: embedlab graph orbits edges.tsv -o orbits/ --hops 1,2
    """
    apply_threads(threads)

    from embedlab.graph.graphlets import ORBIT_PAIRS, orbit_adjacencies

    try:
        hop_list = parse_ints("--hops", hops)
        if any(h not in (1, 2, 3) for h in hop_list):
            raise ValueError(f"--hops must be comma-separated values of 1, 2, 3, got {hops!r}")
        check_out_dir("--out", out)
        graph = _load(edges)
        t0 = time.perf_counter()
        mats = orbit_adjacencies(graph.adj, hops=hop_list)
        elapsed = time.perf_counter() - t0
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(describe_error(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for op in ORBIT_PAIRS:
        if op.name not in mats:
            continue
        mat = mats[op.name]
        file = out / f"{op.name}.npz"
        _atomic_save(file, _npz_writer(mat))
        entries.append(
            {
                "name": op.name,
                "file": file.name,
                "graphlet": op.graphlet,
                "orbit_u": op.orbit_u,
                "orbit_v": op.orbit_v,
                "hop": op.hop,
                "nnz": int(mat.nnz),
            }
        )
    index = {
        "n_nodes": graph.n_nodes,
        "n_edges": graph.n_edges,
        "seconds": elapsed,
        "definition": "entry (u, v) = graphlets with u on orbit_u, v on orbit_v, hop apart",
        "matrices": entries,
    }
    atomic_write_text(out / "index.json", json.dumps(index, indent=2) + "\n")
    _write_mapping(out / "index.json", graph.node_ids)
    if not quiet:
        console.print(
            f"{len(entries)} orbit-adjacency matrices of {graph.n_nodes:,} nodes -> {out} "
            f"in {elapsed:.2f} s",
            highlight=False,
        )


def bench_graph(
    data: Annotated[
        str,
        typer.Option(help="blogcatalog:PATH.mat | cora:PLANETOID_DIR | edges:PATH | mat:PATH"),
    ],
    methods: Annotated[
        str,
        typer.Option(
            help="comma-separated: fastrp, orbits, randproj, spectral, snowflake_latent, "
            "euclid_latent, gcn (the last three: GCN classifiers, need node features)"
        ),
    ] = "fastrp",
    dim: Annotated[str, typer.Option(help="embedding dimension(s), comma-separated")] = "512",
    weights: Annotated[str, typer.Option(help="FastRP iteration weights")] = PAPER_WEIGHTS_TEXT,
    beta: Annotated[float, typer.Option(help="FastRP degree exponent")] = -0.628,
    train_ratio: Annotated[float, typer.Option(help="labelled fraction")] = 0.1,
    repeats: Annotated[int, typer.Option(help="random splits per record")] = 5,
    seed: Annotated[str, typer.Option(help="seed, or comma-separated seeds")] = "0",
    orbit_hops: Annotated[
        str,
        typer.Option(help="orbits: 'auto' (1,2,3 up to 5,000 nodes, else 1) or e.g. '1' or '1,2'"),
    ] = "auto",
    latent_dim: Annotated[int, typer.Option(help="latent methods: latent dimension")] = 16,
    latent_epochs: Annotated[int, typer.Option(help="latent methods: GCN epochs")] = 100,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write JSON-lines records here")
    ] = None,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Embed a labelled graph with each METHOD; Micro/Macro-F1 of node classification.

    Example: embedlab bench graph --data planetoid:../shared/data/planetoid/cora
    --methods fastrp,orbits,spectral --dim 128,512 --repeats 5 --json graph.jsonl
    """
    apply_threads(threads)
    from embedlab.bench import BenchRecord, format_bytes
    from embedlab.graph.bench import GRAPH_METHODS, run_graph_bench
    from embedlab.graph.io import load_graph

    try:
        method_list = [check_choice("--methods", m, GRAPH_METHODS) for m in parse_specs(methods)]
        dims = [check_int("--dim", d, min_value=1) for d in parse_ints("--dim", dim)]
        alphas = parse_floats("--weights", weights)
        check_finite_float("--beta", beta)
        check_fraction("--train-ratio", train_ratio)
        check_int("--repeats", repeats, min_value=1)
        check_int("--latent-dim", latent_dim, min_value=1)
        check_int("--latent-epochs", latent_epochs, min_value=1)
        seeds = [check_int("--seed", s, min_value=0) for s in parse_ints("--seed", seed)]
        check_out_file("--json", json_out)
        hops: list[int] | str = "auto"
        if orbit_hops.strip() != "auto":
            hops = parse_ints("--orbit-hops", orbit_hops)
            if any(h not in (1, 2, 3) for h in hops):
                raise ValueError(
                    f"--orbit-hops must be 'auto' or values of 1, 2, 3, got {orbit_hops!r}"
                )
        graph = load_graph(data)
        if graph.labels is None:
            raise ValueError(f"{data}: the graph has no labels (a .mat needs 'group')")

        def line(record: BenchRecord) -> str:
            if record.status != "ok":
                return f"{record.method}: {record.status}"
            return (
                f"{record.method} dim {record.params['dim']}: micro-F1 "
                f"{record.metrics['micro_f1']:.4f}, embed {record.timing['embed_s']:.2f} s"
            )

        save = record_saver(json_out, quiet=quiet, line=line)

        if not quiet:
            console.print(
                f"[bold]{graph.name}[/]: {graph.n_nodes:,} nodes, {graph.n_edges:,} edges",
                highlight=False,
            )
        records = run_graph_bench(
            graph.adj,
            graph.labels,
            dataset=graph.name,
            methods=method_list,
            dims=dims,
            train_ratio=train_ratio,
            n_repeats=repeats,
            seeds=seeds,
            weights=alphas,
            beta=beta,
            orbit_hops=hops,
            features=graph.features,
            latent_options={"latent_dim": latent_dim, "epochs": latent_epochs},
            on_record=save,
        )
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(describe_error(exc)) from None
    table = Table(title=f"graph · {graph.name} · train {train_ratio:g}", title_justify="left")
    for col in ("method", "dim", "seed", "micro-F1", "macro-F1", "embed s", "memory"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in records:
        table.add_row(
            r.method,
            str(r.params["dim"]),
            str(r.seed),
            f"{r.metrics['micro_f1']:.4f}",
            f"{r.metrics['macro_f1']:.4f}",
            f"{r.timing['embed_s']:.2f}",
            format_bytes(r.memory_bytes),
        )
    console.print(table)
    if json_out is not None:
        console.print(f"records written to {json_out}")
