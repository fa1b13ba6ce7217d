"""The plot building blocks: frontier, ticks, byte labels and the SVG itself."""

from __future__ import annotations

import math
import random
import xml.etree.ElementTree as ET

import pytest

from embedlab.report._numeric import format_bytes, log_ticks, nice_ticks, pareto_frontier
from embedlab.report._svg import Point, RefLine, Series, line_plot_svg

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
    svg = line_plot_svg([a, b], x_label="memory", y_label="auc", refs=[RefLine("full", 0.8)])
    root = ET.fromstring(svg)
    texts = _texts(root)
    for label in ("1 KB", "10 KB", "100 KB", "1 MB", "memory", "auc", "a", "b", "full 0.8000"):
        assert label in texts
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert "a tip" in titles
    # frontier: (1e3, .5), (1e5, .7), (1e6, .8); (1e4, .4) is dominated
    frontier = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "frontier")
    assert len(frontier.findall(f"{SVG}circle")) == 3
    assert any(el.get("stroke-dasharray") for el in root.iter(f"{SVG}line"))


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
    assert "no plottable points" in empty
    ET.fromstring(empty)


def test_plot_escapes_text() -> None:
    svg = line_plot_svg(
        [Series("<script>", [Point(10.0, 1.0, tooltip="a & <b>")], "#000")],
        x_label="x < y",
        y_label="y",
        refs=[RefLine('"ref"', 1.0)],
    )
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    assert "<script>" in _texts(root)
    assert "x < y" in _texts(root)
    assert "a & <b>" in [t.text for t in root.iter(f"{SVG}title")]
