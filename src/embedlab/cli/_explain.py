"""``embedlab analyze explain VECTORS.npy --labels L.npy [-o DIR]``: the body of the command.

Kept apart from :mod:`embedlab.cli.analyze` (which parses the options): load, explain,
print the fidelity table and the rules, write ``-o DIR`` (summary.json + rules.txt).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from embedlab._io import atomic_write_text
from embedlab.cli._common import console

__all__ = ["run_explain"]


def run_explain(
    files: list[Path],
    labels: np.ndarray | None,
    *,
    load: Any,
    ks: list[int] | None,
    method: str,
    out: Path | None,
    json_out: Path | None,
    force: bool,
    seed: int,
) -> None:
    """Explain one vectors file; raises ``ValueError`` on bad input (before any write)."""
    from embedlab.analysis._explain_io import check_explain_target, write_explain_folder
    from embedlab.analysis.explain import explain_embedding

    if len(files) != 1:
        raise ValueError(f"explain needs exactly one VECTORS.npy, got {len(files)} files")
    if labels is None:
        raise ValueError(
            "explain needs --labels: (n,) class labels, or an (n, m) embedding to cluster"
        )
    if out is not None:
        check_explain_target(out, force=force)
    x = load(files[0], "vectors")
    result = explain_embedding(x, labels, ks=ks, method=method, seed=seed)  # type: ignore[arg-type]

    table = Table(
        title=f"surrogate tree on the top-k features ({result.method})", title_justify="left"
    )
    for col in ("k", "fidelity", "random-k fidelity", "accuracy"):
        table.add_column(col, justify="right")
    for k in result.ks:
        table.add_row(
            str(k),
            f"{result.fidelity[k]:.3f}",
            f"{result.fidelity_random[k]:.3f}",
            f"{result.surrogate_accuracy[k]:.3f}",
        )
    console.print(table)
    console.print(
        f"black box held-out accuracy {result.black_box_accuracy:.3f}; "
        f"tree on all {result.importance.shape[0]} features: fidelity {result.fidelity_all:.3f}",
        highlight=False,
    )
    top = ", ".join(result.feature_names[j] for j in result.ranking[:10])
    console.print(f"top features: {top}", highlight=False)
    console.print(result.rules_text(), highlight=False, markup=False, soft_wrap=True)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result.to_dict(), indent=2) + "\n")
        console.print(f"JSON written to {json_out}")
    if out is not None:
        write_explain_folder(result, out, force=force)
        console.print(f"explanation written to {out}/ (summary.json, rules.txt)")
