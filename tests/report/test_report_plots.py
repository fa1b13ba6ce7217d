"""The plot building blocks: frontier, ticks, byte labels and the matplotlib SVG."""

from __future__ import annotations

import math
import random
import xml.etree.ElementTree as ET

import pytest

from embedlab.report._numeric import format_bytes, log_ticks, nice_ticks, pareto_frontier
from embedlab.report._plot_history import Curve, history_plot_svg
from embedlab.report._plot_lines import Point, RefLine, Series, line_plot_svg

SVG = "{http://www.w3.org/2000/svg}"


def naive_frontier(xs: list[float], ys: list[float], maximize: bool) -> set[int]:
    """O(n^2): a point is kept unless another is no worse on both axes and better on one."""
    sign = 1.0 if maximize else -1.0
    keep = set()
    for i in range(len(xs)):
        dominated = any(
            xs[j] <= xs[i]
            and sign * ys[j] >= sign * ys[i]
            and (xs[j] < xs[i] or sign * ys[j] > sign * ys[i])
            for j in range(len(xs))
            if j != i
        )
        if not dominated:
            keep.add(i)
    return keep


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("maximize", [True, False])
def test_pareto_frontier_matches_naive(seed: int, maximize: bool) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 60)
    # a coarse grid makes ties and exact duplicates common
    xs = [float(rng.randint(1, 12)) for _ in range(n)]
    ys = [rng.randint(0, 10) / 10 for _ in range(n)]
    got = pareto_frontier(xs, ys, maximize=maximize)
    assert set(got) == naive_frontier(xs, ys, maximize)
    assert len(got) == len(set(got))
    assert [xs[i] for i in got] == sorted(xs[i] for i in got)


def test_pareto_frontier_continuous_values() -> None:
    rng = random.Random(42)
    xs = [10 ** rng.uniform(2, 7) for _ in range(300)]
    ys = [rng.random() for _ in range(300)]
    assert set(pareto_frontier(xs, ys)) == naive_frontier(xs, ys, True)


def test_pareto_frontier_small_cases() -> None:
    assert pareto_frontier([], []) == []
    assert pareto_frontier([5.0], [0.3]) == [0]
    # identical points do not dominate each other
    assert pareto_frontier([1.0, 1.0], [0.5, 0.5]) == [0, 1]
    # more memory for the same metric is dominated
    assert pareto_frontier([1.0, 2.0], [0.5, 0.5]) == [0]
    assert pareto_frontier([1.0, 2.0, 3.0], [0.5, 0.7, 0.6]) == [0, 1]


def test_pareto_frontier_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        pareto_frontier([1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="finite"):
        pareto_frontier([1.0, 2.0], [0.5, math.nan])


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (1e3, 1e6, [1e3, 1e4, 1e5, 1e6]),
        (1500, 2e6, [1e4, 1e5, 1e6]),
        # fewer than 3 decades inside: 1-2-5
        (1500, 90_000, [2e3, 5e3, 1e4, 2e4, 5e4]),
        # not even two 1-2-5 values inside: every integer mantissa
        (3000, 8000, [3e3, 4e3, 5e3, 6e3, 7e3, 8e3]),
        (0.001, 1.0, [0.001, 0.01, 0.1, 1.0]),
        (0.3, 30, [0.5, 1.0, 2.0, 5.0, 10.0, 20.0]),
    ],
)
def test_log_ticks(lo: float, hi: float, expected: list[float]) -> None:
    assert log_ticks(lo, hi) == expected


def test_log_ticks_rejects_bad_range() -> None:
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        log_ticks(0.0, 10.0)
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        log_ticks(10.0, 1.0)


def test_nice_ticks() -> None:
    assert nice_ticks(0.7, 0.8) == [0.7, 0.72, 0.74, 0.76, 0.78, 0.8]
    assert nice_ticks(0.693, 0.812) == [0.7, 0.72, 0.74, 0.76, 0.78, 0.8]
    assert nice_ticks(-3.0, 7.0) == [-2.0, 0.0, 2.0, 4.0, 6.0]
    assert nice_ticks(0.5, 0.5) == [0.5]


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 KB"),
        (1500, "1.5 KB"),
        (32_000, "32 KB"),
        (320_000, "320 KB"),
        (999_999, "1 MB"),
        (1e6, "1 MB"),
        (2.5e9, "2.5 GB"),
        (math.nan, "—"),
    ],
)
def test_format_bytes(n: float, text: str) -> None:
    assert format_bytes(n) == text


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_plot_has_ticks_tooltips_and_frontier() -> None:
    a = Series("a", [Point(1e3, 0.5, 0.45, 0.55, "a tip"), Point(1e5, 0.7)], "#0072B2")
    b = Series("b", [Point(1e4, 0.4), Point(1e6, 0.8)], "#E69F00", "square")
    svg = line_plot_svg(
        [a, b], x_label="memory", y_label="auc", refs=[RefLine("full", 0.8)], id_prefix="t"
    )
    root = ET.fromstring(svg)
    assert root.get("class") == "plot" and root.get("width") == "960"
    texts = _texts(root)
    for label in ("1 KB", "10 KB", "100 KB", "1 MB", "memory", "auc", "a", "b", "full 0.8000"):
        assert label in texts
    assert "Pareto frontier" in texts
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert "a tip" in titles
    # frontier: (1e3, .5), (1e5, .7), (1e6, .8) get rings; (1e4, .4) is dominated
    rings = next(g for g in root.iter(f"{SVG}g") if g.get("id") == "t-frontier")
    assert len(list(rings.iter(f"{SVG}use"))) == 3
    assert any("stroke-dasharray" in (el.get("style") or "") for el in root.iter(f"{SVG}path"))
    # every id carries the prefix, so plots can share a page
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert ids and all(i.startswith("t-") for i in ids) and len(ids) == len(set(ids))


def test_plot_svg_is_deterministic_and_self_contained() -> None:
    s = [Series("a", [Point(1e3, 0.5, tooltip="tip"), Point(1e5, 0.7)], "#0072B2")]
    one = line_plot_svg(s, x_label="x", y_label="y")
    assert one == line_plot_svg(s, x_label="x", y_label="y")
    for needle in ("<?xml", "<!DOCTYPE", "<metadata", "<style", "xlink:", "<script"):
        assert needle not in one
    assert one.count("http://") == 1  # the SVG namespace only


def test_plot_degenerate_inputs() -> None:
    # a single point, identical x everywhere, and NaN / non-positive points left out
    one = line_plot_svg([Series("solo", [Point(2000, 0.9)], "#000")], x_label="x", y_label="y")
    assert "solo" in _texts(ET.fromstring(one))
    same_x = Series("s", [Point(5e4, 0.1), Point(5e4, 0.2), Point(math.nan, 0.3)], "#000")
    bad = Series("bad", [Point(0.0, 0.5), Point(10.0, math.nan)], "#111")
    svg = line_plot_svg([same_x, bad], x_label="x", y_label="y")
    root = ET.fromstring(svg)
    assert "bad" not in _texts(root)
    assert "nan" not in svg.lower()  # no NaN coordinates leaked into the markup
    empty = line_plot_svg([bad], x_label="x", y_label="y")
    assert "no plottable points" in empty and "<svg" not in empty


def test_plot_escapes_text() -> None:
    svg = line_plot_svg(
        [Series("<script>$x$", [Point(10.0, 1.0, tooltip="a & <b>")], "#000")],
        x_label="x < y",
        y_label="y",
        refs=[RefLine('"ref"', 1.0)],
    )
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    assert "<script>$x$" in _texts(root)  # "$" stays text, not mathtext
    assert "x < y" in _texts(root)
    assert "a & <b>" in [t.text for t in root.iter(f"{SVG}title")]


def test_qps_orientation_frontier() -> None:
    # larger x and larger y are both better: (0.9, 100) and (0.6, 1000) are kept
    pts = [Point(0.9, 100.0), Point(0.6, 1000.0), Point(0.5, 50.0)]
    svg = line_plot_svg(
        [Series("s", pts, "#000")],
        x_label="recall",
        y_label="qps",
        x_lower_better=False,
        x_scale="linear",
        y_scale="log",
        x_format=None,
        id_prefix="q",
    )
    root = ET.fromstring(svg)
    rings = next(g for g in root.iter(f"{SVG}g") if g.get("id") == "q-frontier")
    assert len(list(rings.iter(f"{SVG}use"))) == 2
    assert {"100", "1,000"} <= set(_texts(root))


def test_history_plot() -> None:
    curves = [
        Curve("a @ 10×", [1.0, 2.0, 3.0], [0.5, 0.4, 0.35], [0.7, 0.72, math.nan], "#000",
              tooltip="a tip"),
        Curve("b", [1.0, 2.0], [0.6, 0.5], [0.65, 0.7], "#111", "square"),
    ]  # fmt: skip
    svg = history_plot_svg(curves, id_prefix="h")
    root = ET.fromstring(svg)
    texts = _texts(root)
    for label in ("epoch", "train loss", "valid AUC", "a @ 10×", "b", "1", "2", "3"):
        assert label in texts
    assert texts.count("a @ 10×") == 1  # one legend entry for both panels
    assert [t.text for t in root.iter(f"{SVG}title")] == ["a tip", "a tip"]
    empty = history_plot_svg([Curve("c", [1.0], [math.nan], [math.nan], "#000")])
    assert "no plottable points" in empty


def test_rendering_leaves_the_users_matplotlib_alone() -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    backend, figs = matplotlib.get_backend(), plt.get_fignums()
    fonttype = matplotlib.rcParams["svg.fonttype"]
    line_plot_svg([Series("a", [Point(1e3, 0.5)], "#000")], x_label="x", y_label="y")
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figs
    assert matplotlib.rcParams["svg.fonttype"] == fonttype
