"""``embedlab bench retrieval``: every index on the same vectors, recall vs bytes per vector."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from embedlab._validation import check_choice, check_int
from embedlab.bench import BenchRecord
from embedlab.cli._common import (
    CpusPerRun,
    JsonOut,
    RayAddress,
    RecordSaver,
    Rerun,
    UseRay,
    check_json_out,
    console,
    describe_error,
    fail,
    grid_engine,
    parse_floats,
    parse_ints,
    record_saver,
)
from embedlab.cli._flags import Quiet, Threads, apply_threads

if TYPE_CHECKING:
    from embedlab.bench import LocalEngine, RayEngine
    from embedlab.bench.retrieval import RetrievalBenchConfig
    from embedlab.data.retrieval import RetrievalData

__all__ = [
    "DEFAULT_RETRIEVAL_METHODS",
    "bench_retrieval",
    "print_extra_summary",
    "print_retrieval_summary",
]

DEFAULT_RETRIEVAL_METHODS = (
    "flat,int8,binary,binary_rerank,bebr1,bebr2,pq48,opq48,bigranular,matryoshka"
)


def print_retrieval_summary(title: str, records: Sequence[BenchRecord]) -> None:
    """The summary table, then one line per method that failed (why)."""
    from embedlab.bench.retrieval import RETRIEVAL_COLUMNS, retrieval_summary_rows

    table = Table(title=title, title_justify="left")
    width = max((len(r.method) for r in records), default=6)
    for col in RETRIEVAL_COLUMNS:
        if col == "method":
            table.add_column(col, justify="left", no_wrap=True, min_width=min(width, 28))
        else:
            table.add_column(col, justify="left" if col == "status" else "right")
    for row in retrieval_summary_rows(records):
        table.add_row(*row)
    console.print(table)
    for r in records:
        if r.status != "ok":
            console.print(f"  [dim]{r.method}: {r.error}[/]", highlight=False)


def print_extra_summary(title: str, records: Sequence[BenchRecord]) -> None:
    """The table of the ``--filters`` / ``--multivector`` records."""
    from embedlab.bench.retrieval_extra import EXTRA_COLUMNS, extra_summary_rows

    table = Table(title=title, title_justify="left")
    for col in EXTRA_COLUMNS:
        table.add_column(col, justify="right" if col in ("R@k", "QPS") else "left")
    for row in extra_summary_rows(records):
        table.add_row(*row)
    console.print(table)


def bench_retrieval(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Option(
            help="docstrings (stdlib, embedded with MiniLM) | beir:DIR | npy:X.npy[,Q.npy]"
        ),
    ] = "docstrings",
    methods: Annotated[
        str,
        typer.Option(
            help="index specs or aliases, comma-separated (a Rerank(...) entry joins the one "
            "before it) or ';'-separated: flat,int8,binary,binary_rerank,bebr1,bebr2,pq48,"
            "opq48,bigranular,matryoshka, or specs like 'PQ32,Rerank(Flat)'; 'none' runs only "
            "--filters / --multivector"
        ),
    ] = DEFAULT_RETRIEVAL_METHODS,
    k: Annotated[int, typer.Option("-k", "--k", help="recall@k against exact search")] = 10,
    metric: Annotated[str, typer.Option(help="cos | ip | l2")] = "cos",
    n_holdout: Annotated[
        int, typer.Option(help="corpus vectors held out as extra queries (recall vs exact)")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="seed of the hold-out split and index training")] = 0,
    json_out: JsonOut = None,
    rerun: Rerun = False,
    ray: UseRay = False,
    address: RayAddress = None,
    cpus_per_run: CpusPerRun = None,
    filters: Annotated[
        bool,
        typer.Option(
            "--filters",
            help="also run the filtered-search sweep (pre/post/acorn/hnsw/auto by selectivity) "
            "on the same vectors; records 'filtered:STRATEGY@S%'",
        ),
    ] = False,
    selectivities: Annotated[
        str, typer.Option(help="selectivities of the --filters sweep, comma-separated")
    ] = "0.5,0.1,0.01,0.001",
    multivector: Annotated[
        bool,
        typer.Option(
            "--multivector",
            help="also run MUVERA vs exact Chamfer on MiniLM token embeddings "
            "(needs --data beir:DIR)",
        ),
    ] = False,
    candidates: Annotated[
        str, typer.Option(help="MUVERA re-ranked candidates C of --multivector, comma-separated")
    ] = "10,20,50,100,200,500,1000",
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Build every index METHOD on DATA; print recall, nDCG, bytes per vector and speed.

    --filters and --multivector run in addition to --methods; pass --methods none to run
    only them. Their records go to the same --json file and summary. --ray measures each
    method as a Ray task (QPS then counts the task's --cpus-per-run threads).

    Example: embedlab bench retrieval --data beir:DIR --methods flat,pq48,bigranular
    --json retrieval.jsonl
    """
    apply_threads(threads)
    from embedlab.bench._bidr_method import is_bidr_spec, parse_bidr_spec
    from embedlab.bench.retrieval import RetrievalBenchConfig, parse_methods
    from embedlab.data.retrieval import load_retrieval, parse_retrieval_spec
    from embedlab.index import parse_index_spec

    skip_methods = methods.strip().lower() == "none"
    try:
        check_int("--k", k, min_value=1)
        check_choice("--metric", metric, ("cos", "ip", "l2"))
        check_int("--n-holdout", n_holdout, min_value=0)
        check_int("--seed", seed, min_value=0)
        check_json_out(json_out)
        engine = grid_engine(ray, address, cpus_per_run)
        if multivector and parse_retrieval_spec(data)[0] != "beir":
            raise ValueError(
                f"--multivector needs token embeddings: use --data beir:DIR, got {data!r}"
            )
        if skip_methods and not (filters or multivector):
            raise ValueError("--methods none leaves nothing to run: add --filters or --multivector")
        specs = ["Flat"] if skip_methods else parse_methods(methods)
        for spec in specs:  # a typo fails here, not as a failed row after loading the data
            try:
                if is_bidr_spec(spec):
                    parse_bidr_spec(spec)
                else:
                    parse_index_spec(spec)
            except ValueError as exc:
                raise ValueError(f"--methods: {exc}") from None
        config = RetrievalBenchConfig(
            methods=specs,
            k=k,
            metric=metric,  # type: ignore[arg-type]  # checked by the config
            seed=seed,
            progress=not quiet,
        )
        sels = parse_floats("--selectivities", selectivities) if filters else []
        if filters and any(not 0 < v <= 1 for v in sels):
            raise ValueError(f"--selectivities must be numbers in (0, 1], got {selectivities!r}")
        cands = parse_ints("--candidates", candidates) if multivector else []
        if multivector and min(cands) < 1:
            raise ValueError(f"--candidates must be positive integers, got {candidates!r}")
    except (ValueError, TypeError, ImportError) as exc:
        raise fail(describe_error(exc)) from None
    with record_saver(json_out, quiet=quiet, line=_line(k), rerun=rerun, ctx=ctx) as save:
        records: list[BenchRecord] = []
        if not skip_methods or filters:
            try:
                dataset = load_retrieval(data, seed=seed, n_holdout=n_holdout, progress=not quiet)
            except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
                raise fail(describe_error(exc)) from None
            records = _run_single_vector(dataset, config, skip_methods, sels, save, quiet, engine)
        if multivector:
            _run_multivector(data, config, n_holdout, cands, save, quiet)
        save.done(records)


def _line(k: int) -> Callable[[BenchRecord], str]:
    def line(record: BenchRecord) -> str:
        recall = record.metrics.get(f"recall@{k}")
        shown = f"recall@{k} {recall:.4f}" if recall is not None else record.status
        return f"{record.method}: {shown}"

    return line


def _run_single_vector(
    dataset: RetrievalData,
    config: RetrievalBenchConfig,
    skip_methods: bool,
    sels: list[float],
    save: RecordSaver,
    quiet: bool,
    engine: LocalEngine | RayEngine | None,
) -> list[BenchRecord]:
    """``--methods`` (unless skipped), then the ``--filters`` sweep when ``sels``; returns
    the ``--methods`` records."""
    from embedlab.bench.retrieval import run_retrieval_bench
    from embedlab.bench.retrieval_extra import run_filtered_bench

    k = config.k
    if not quiet:
        console.print(
            f"[bold]{dataset.name}[/]: {dataset.n_corpus:,} vectors x {dataset.dim} "
            f"({dataset.model}), {dataset.queries.shape[0]:,} queries"
            f"{' with qrels' if dataset.qrels else ''}, "
            f"{0 if dataset.holdout is None else dataset.holdout.shape[0]:,} held-out queries"
        )
    records: list[BenchRecord] = []
    if not skip_methods:
        try:
            records = run_retrieval_bench(
                dataset, config, on_record=save, recorded=save.recorded, engine=engine
            )
        except ValueError as exc:
            raise fail(describe_error(exc)) from None
        print_retrieval_summary(f"retrieval · {dataset.name} · {dataset.model} · k {k}", records)
    if sels:
        try:
            extra = run_filtered_bench(
                dataset, sels, k=k, seed=config.seed, metric=config.metric, on_record=save
            )
        except ValueError as exc:
            raise fail(describe_error(exc)) from None
        print_extra_summary(f"filtered search · {dataset.name} · k {k}", extra)
    return records


def _run_multivector(
    data: str,
    config: RetrievalBenchConfig,
    n_holdout: int,
    cands: list[int],
    save: Callable[[BenchRecord], None],
    quiet: bool,
) -> None:
    """``--multivector``: MUVERA grid x ``cands``, brute-force Chamfer, the heuristic."""
    from embedlab.bench.retrieval_extra import run_multivector_bench
    from embedlab.data.multivector import load_multivector

    try:
        tokens = load_multivector(data, seed=config.seed, n_holdout=n_holdout, progress=not quiet)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise fail(describe_error(exc)) from None
    if not quiet:
        n_h = 0 if tokens.holdout is None else len(tokens.holdout)
        console.print(
            f"[bold]{tokens.name}[/] tokens: {len(tokens.corpus):,} documents, "
            f"{tokens.corpus.vectors.shape[0]:,} vectors x {tokens.dim}; "
            f"{len(tokens.queries):,} queries + {n_h:,} held-out documents as queries"
        )
    try:
        records = run_multivector_bench(
            tokens, candidates=cands, k=config.k, seed=config.seed, on_record=save
        )
    except ValueError as exc:
        raise fail(describe_error(exc)) from None
    print_extra_summary(
        f"multi-vector · {tokens.name} · recall@{config.k} vs exact Chamfer", records
    )
