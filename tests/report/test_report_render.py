"""render_report end to end: the page, its numbers, escaping, edge cases, atomic writes."""

from __future__ import annotations

import csv
import math
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from embedlab.bench import BenchRecord
from embedlab.report import render_report
from embedlab.report._summary import group_records, primary_metric

SVG = "{http://www.w3.org/2000/svg}"
VOID = {"meta", "br", "hr", "img", "input", "link"}


class _Balance(HTMLParser):
    """Checks every opened tag is closed in order (void elements aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <meta/>, <line/>: opened and closed at once

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
        else:
            self.stack.pop()


def _render(records: list[BenchRecord], tmp_path: Path, **kw: str) -> tuple[Path, str]:
    page = render_report(records, tmp_path / "out", **kw)
    return page, page.read_text(encoding="utf-8")


def test_report_is_written_and_well_formed(records: list[BenchRecord], tmp_path: Path) -> None:
    page, html = _render(records, tmp_path)
    assert page == tmp_path / "out" / "index.html"
    assert page.is_file() and (page.parent / "results.csv").is_file()
    checker = _Balance()
    checker.feed(html)
    assert checker.errors == [] and checker.stack == []
    root = ET.fromstring(html)  # the page is also well-formed XML, SVG included
    assert len(list(root.iter(f"{SVG}svg"))) >= 1
    # self-contained: nothing fetched, nothing run; url() only points inside the page
    for needle in ("<script", "http://", "https://", "<link", "@import", "xlink:"):
        assert needle not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert re.search(r"url\((?!#)", html) is None
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids))  # several plots on one page: no clashing ids


def test_report_content(records: list[BenchRecord], tmp_path: Path) -> None:
    _, html = _render(records, tmp_path, title="CTR & friends")
    assert "CTR &amp; friends" in html
    assert "embedlab 0.1.0" in html and "20 runs (18 ok, 2 infeasible or failed)" in html
    for method in ("full", "hash", "qr", "tt_rec"):
        assert f">{method}<" in html
    # full auc over seeds 0.800 / 0.802: the tooltip, and the cell with the std under the mean
    assert "auc 0.8010 ± 0.0014" in html and '0.8010<span class="pm">± 0.0014</span>' in html
    assert "-0.0720" in html  # hash at 10x vs full
    assert 'title="32,000 bytes">32 KB<' in html  # exact bytes on hover
    assert "108×" in html  # qr at 100x uses 93 % of its budget: 320000 / 2976
    assert "0.93×" in html  # samples/s of 37,000 vs 40,000 for full
    assert '40,000<span class="pm">± 0</span>' in html
    assert "0, 1" in html
    assert "rank 1 cores need 3,200 B &gt; budget 320 B" in html
    assert "oracle 0.8123" in html and "full (reference) 0.8010" in html
    root = ET.fromstring(html)
    infeasible = [tr for tr in root.iter("tr") if "infeasible" in (tr.get("class") or "")]
    assert len(infeasible) == 1
    pareto, history = root.iter(f"{SVG}svg")
    assert "against memory" in (pareto.get("aria-label") or "")
    # every measured configuration has one marker with a tooltip
    tips = [t.text or "" for t in pareto.iter(f"{SVG}title") if "seeds" in (t.text or "")]
    assert len(tips) == 1 + 3 + 3 + 2
    assert any("memory 32 KB (32,000 B)" in t for t in tips)
    # the training curves: one line per configuration in each panel
    assert "training curves" in (history.get("aria-label") or "")
    curves = [t.text or "" for t in history.iter(f"{SVG}title")]
    assert len(curves) == 2 * 9 and "hash @ 10×\nseeds 0, 1\nepochs 4" in curves
    # column groups over a sticky header
    groups = [th.text for th in root.iter("th") if th.get("colspan")]
    assert groups == ["run", "metrics", "timing", "params"]
    heads = [th.text for th in root.iter("th")]
    for head in ("compression (reached)", "train (s)", "samples/s vs full", "epochs run"):
        assert head in heads
    assert "thead{position:sticky" in html and ".tablewrap{overflow:auto" in html


def test_table_frontier_flags_match_naive(records: list[BenchRecord]) -> None:
    (group,) = group_records(records)
    pts = [
        (row, row.memory.mean, row.metrics["auc"].mean)
        for row in group.rows
        if row.ok and row.memory is not None and row.metrics.get("auc") is not None
    ]
    for row, x, y in pts:
        dominated = any(
            x2 <= x and y2 >= y and (x2 < x or y2 > y) for r2, x2, y2 in pts if r2 is not row
        )
        assert row.on_frontier is not dominated, row.method


def test_escaping(records: list[BenchRecord], tmp_path: Path) -> None:
    evil = "<script>alert('x')</script>"
    records.append(
        BenchRecord("ctr", "synthetic", evil, model="deepfm", compression=10.0,
                    memory_bytes=1000, metrics={"auc": 0.7}, error=None)
    )  # fmt: skip
    records.append(
        BenchRecord("ctr", "synthetic", "bad", model="deepfm", status="infeasible",
                    error="<b>budget</b> & more")
    )  # fmt: skip
    _, html = _render(records, tmp_path, title="<i>t</i>")
    assert "<script" not in html and "<b>" not in html and "<i>t</i>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;budget&lt;/b&gt; &amp; more" in html
    ET.fromstring(html)


def test_empty_records_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="records must not be empty"):
        render_report([], tmp_path)
    assert not (tmp_path / "index.html").exists()


def test_edge_cases_render(tmp_path: Path) -> None:
    recs = [
        # a single point, NaN and None metrics, missing memory, identical memory
        BenchRecord("retrieval", "d", "flat", memory_bytes=4000, metrics={"recall@10": 1.0}),
        BenchRecord("retrieval", "d", "int8", memory_bytes=4000, metrics={"recall@10": 0.99}),
        BenchRecord("retrieval", "d", "nomem", metrics={"recall@10": 0.5}),
        BenchRecord("retrieval", "d", "nanrun", memory_bytes=100, metrics={"recall@10": math.nan}),
        BenchRecord("metric", "digits", "triplet", memory_bytes=10, metrics={"map@r": None}),  # type: ignore[dict-item]
        BenchRecord("graph", "g", "only", memory_bytes=123, metrics={"mrr": 0.3}),
    ]
    _, html = _render(recs, tmp_path)
    root = ET.fromstring(html)
    svg_text = " ".join(
        t.text or "" for svg in root.iter(f"{SVG}svg") for t in svg.iter(f"{SVG}text")
    )
    assert "nomem" in html and "nomem" not in svg_text  # kept in the table, not plotted
    assert "nanrun" not in svg_text
    assert "no plottable points" in html  # the metric group has nothing to plot
    assert "nan" not in html.lower().replace("nanrun", "")


def test_primary_metric_choice() -> None:
    assert primary_metric("ctr", ["logloss", "auc"]) == "auc"
    assert primary_metric("retrieval", ["mrr", "recall@10"]) == "recall@10"
    assert primary_metric("retrieval", ["mrr"]) == "mrr"
    assert primary_metric("graph", ["mrr", "hits@1"]) == "mrr"
    assert primary_metric("graph", []) is None
    (g,) = group_records([BenchRecord("x", "d", "m", memory_bytes=1, metrics={"logloss": 0.3})])
    assert g.primary == "logloss" and g.maximize is False


def test_reached_from_reference_without_full_bytes() -> None:
    recs = [
        BenchRecord("ctr", "d", "full", compression=1.0, memory_bytes=8000, metrics={"auc": 0.8}),
        BenchRecord("ctr", "d", "qr", compression=4.0, memory_bytes=2500, metrics={"auc": 0.7}),
    ]
    (g,) = group_records(recs)
    assert [r.method for r in g.rows] == ["full", "qr"]
    assert g.reached(g.rows[1]) == pytest.approx(3.2)
    (g2,) = group_records(recs[1:])
    assert g2.reference is None and g2.reached(g2.rows[0]) is None


def test_results_csv(records: list[BenchRecord], tmp_path: Path) -> None:
    page, _ = _render(records, tmp_path)
    with (page.parent / "results.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(records)
    full = next(r for r in rows if r["method"] == "full" and r["seed"] == "0")
    assert full["memory_bytes"] == "320000" and full["metric:auc"] == "0.8"
    bad = next(r for r in rows if r["status"] == "infeasible")
    assert bad["metric:auc"] == "" and "rank 1 cores" in bad["error"]


def test_atomic_write_leaves_no_temp_files(records: list[BenchRecord], tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_report(records, out)
    render_report(records[:3], out)  # overwrite in place
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "results.csv"]
    mode = stat.S_IMODE((out / "index.html").stat().st_mode)
    assert mode & stat.S_IRUSR and mode & stat.S_IROTH


def test_failed_write_keeps_old_page(
    records: list[BenchRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    page = render_report(records, out)
    before = page.read_text(encoding="utf-8")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        render_report(records[:2], out, title="new")
    monkeypatch.undo()
    assert page.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "results.csv"]


def test_retrieval_plots(retrieval_records: list[BenchRecord], tmp_path: Path) -> None:
    _, html = _render(retrieval_records, tmp_path)
    root = ET.fromstring(html)
    labels = [svg.get("aria-label") for svg in root.iter(f"{SVG}svg")]
    assert labels == [
        "retrieval / rx / vectors: recall@10 against memory",
        "retrieval / rx / vectors: recall@10 against qps_1thread",
    ]
    caps = [c.text for c in root.iter("figcaption")]
    assert caps == [
        "recall@10 against RAM bytes per vector",
        "recall@10 against queries per second",
    ]
    qps = list(root.iter(f"{SVG}svg"))[1]
    texts = [t.text for t in qps.iter(f"{SVG}text")]
    assert "qps 1thread (queries/s, log scale)" in texts and "50,000" in texts
    tips = [t.text or "" for t in qps.iter(f"{SVG}title")]
    assert len(tips) == 4 and any("qps_1thread 9,225" in t for t in tips)
    heads = [th.text for th in root.iter("th")]
    assert "QPS, 1 thread" in heads and "p50 (ms)" in heads and "disk (B / vector)" in heads
    assert "compression (reached)" not in heads  # no row can tell


def test_no_history_no_training_plot(records: list[BenchRecord], tmp_path: Path) -> None:
    for r in records:
        r.params.pop("history", None)
    _, html = _render(records, tmp_path)
    assert "training curves" not in html and len(list(ET.fromstring(html).iter(f"{SVG}svg"))) == 1


def test_same_records_same_page(records: list[BenchRecord], tmp_path: Path) -> None:
    def page(name: str) -> str:
        html = render_report(records, tmp_path / name).read_text(encoding="utf-8")
        return re.sub(r"generated [^·]*·", "", html)

    assert page("a") == page("b")


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, embedlab.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
