"""``embedlab analyze``: measure one embedding file, or compare several.

    embedlab analyze VECTORS.npy [--labels L.npy] [--json OUT.json] [-o DIR]
    embedlab analyze compare A.npy B.npy [C.npy ...] [--json OUT.json] [-o DIR]
    embedlab analyze explain VECTORS.npy --labels L.npy [--k 10,20,50] [-o DIR [--force]]

One command whose first word may be ``compare`` or ``explain`` (a Typer group cannot also
take a file as its first argument).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from embedlab._io import atomic_write_text
from embedlab._validation import check_int
from embedlab.cli._common import (
    check_out_dir,
    check_out_file,
    console,
    describe_error,
    fail,
    parse_ints,
)
from embedlab.cli._flags import Quiet, Threads, apply_threads

__all__ = ["analyze"]


def _load(path: Path, what: str) -> np.ndarray:
    if path.is_dir():
        raise ValueError(f"{what} must be a .npy file, got the folder {path}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} file does not exist: {path}")
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except ValueError as exc:  # object arrays need pickle; so do non-.npy files
        raise ValueError(f"{path}: not a numeric .npy array ({exc})") from None


def _print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def analyze(
    args: Annotated[
        list[str],
        typer.Argument(
            help="VECTORS.npy, or `compare A.npy B.npy [...]`, or `explain VECTORS.npy`",
            metavar="[compare|explain] FILES...",
        ),
    ],
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="(n,) integer class labels, .npy (single file only)"),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the measures as JSON to this path")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="write an HTML page to OUT/index.html")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the subsampling")] = 0,
    k: Annotated[
        str | None,
        typer.Option("-k", "--k", help="explain: top-k feature counts, e.g. 10,20,50 (default)"),
    ] = None,
    method: Annotated[
        str,
        typer.Option(help="explain: feature importance, permutation|occlusion|gradient"),
    ] = "permutation",
    force: Annotated[
        bool, typer.Option("--force", help="explain: replace an earlier explanation in -o")
    ] = False,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """How many dimensions do these embeddings use? Are two models' spaces the same up to
    rotation? Intrinsic dimension (TwoNN, MLE, PCA), uniformity, hubness, neural collapse;
    `compare`: linear/RBF CKA and Procrustes error between files of paired rows;
    `explain`: top-k input features of the labels (or of an embedding's clusters), a
    surrogate tree on them, its fidelity and if-then rules (-o DIR: summary.json, rules.txt).

    Examples: embedlab analyze vectors.npy --labels labels.npy -o report/;
    embedlab analyze compare a.npy b.npy; embedlab analyze explain x.npy --labels y.npy -o ex/
    """
    apply_threads(threads)
    from embedlab.analysis import analyze_embeddings, compare_embeddings, render_analysis
    from embedlab.analysis.report import AnalysisResult, ComparisonResult

    result: AnalysisResult | ComparisonResult
    try:
        check_int("--seed", seed, min_value=0)
        check_out_file("--json", json_out)
        check_out_dir("--out", out)
        if args and args[0] == "explain":
            from embedlab.cli._explain import run_explain

            run_explain(
                [Path(a) for a in args[1:]],
                None if labels is None else _load(labels, "labels"),
                load=_load,
                ks=None if k is None else parse_ints("--k", k),
                method=method,
                out=out,
                json_out=json_out,
                force=force,
                seed=seed,
            )
            return
        if args and args[0] == "compare":
            files = [Path(a) for a in args[1:]]
            if len(files) < 2:
                raise ValueError(f"compare needs at least 2 .npy files, got {len(files)}")
            if labels is not None:
                raise ValueError("--labels applies to a single file, not to compare")
            arrays = [_load(f, "vectors") for f in files]
            result = compare_embeddings(arrays, [f.stem for f in files], seed=seed)
        else:
            if len(args) != 1:
                raise ValueError(
                    f"expected one VECTORS.npy (or `compare A.npy B.npy`), got {len(args)} "
                    f"arguments: {' '.join(args)}"
                )
            x = _load(Path(args[0]), "vectors")
            y = None if labels is None else _load(labels, "labels")
            result = analyze_embeddings(x, y, seed=seed)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise fail(describe_error(exc)) from None

    record = result.to_dict()
    if isinstance(result, AnalysisResult):
        keys = ["n_points", "dim", "twonn", "mle", "effective_rank", "uniformity", "hubness"]
        rows = [(k, _fmt(record[k])) for k in keys]
        rows += [(f"pca_dims@{t}", str(d)) for t, d in record["pca_dims"].items()]
        if record["neural_collapse"] is not None:
            rows += [(f"nc:{k}", _fmt(v)) for k, v in record["neural_collapse"].items()]
        if record["label_sharpness"] is not None:
            rows.append(("label_sharpness", _fmt(record["label_sharpness"])))
        _print_rows("embedding analysis", rows)
    else:
        names = record["names"]
        rows = []
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                b = names[j]
                rows.append((f"linear CKA {a} / {b}", _fmt(record["linear_cka"][i][j])))
                rows.append((f"RBF CKA {a} / {b}", _fmt(record["rbf_cka"][i][j])))
                rows.append(
                    (f"Procrustes error {a} -> {b}", _fmt(record["procrustes_error"][i][j]))
                )
        _print_rows("embedding comparison", rows)
    for note in record.get("notes", []):
        console.print(f"  [dim]{note}[/]", highlight=False)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(record, indent=2) + "\n")
        if not quiet:
            console.print(f"JSON written to {json_out}")
    if out is not None:
        page = render_analysis(result, out)
        if not quiet:
            console.print(f"report written to {page}")
