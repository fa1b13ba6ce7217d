"""The report in a real headless browser: Chromium, driven over the DevTools protocol.

No Python browser driver is needed: Chromium's ``--remote-debugging-pipe`` speaks the
protocol on file descriptors 3 (commands in) and 4 (replies out), NUL-separated JSON.
The test skips when no Chromium is installed (CI has none).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from embedlab.bench import BenchRecord
from embedlab.report import render_report

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
_BROWSER = next((p for b in _BROWSERS if (p := shutil.which(b))), None)
pytestmark = pytest.mark.skipif(
    _BROWSER is None, reason="no Chromium installed (apt-get install chromium) to check the page"
)

_WIDTH, _HEIGHT = 1400, 1000
_TIMEOUT_S = 30.0

# Per plot: tick labels of each axis, legend entries and axis labels, read from the DOM;
# plus whether the page itself scrolls sideways and how the table header is styled.
_PROBE = """JSON.stringify({
  plots: [...document.querySelectorAll('svg.plot')].map(svg => {
    const texts = sel => [...svg.querySelectorAll(sel)].map(t => t.textContent.trim())
      .filter(s => s.length > 0);
    const box = svg.getBoundingClientRect();
    return {
      label: svg.getAttribute('aria-label'),
      width: box.width, height: box.height,
      xticks: texts('[id*="xtick_"] text'),
      yticks: texts('[id*="ytick_"] text'),
      legend: texts('[id*="legend_"] text'),
      texts: texts('text'),
      drawn: [...svg.querySelectorAll('text')].filter(t => t.getBBox().width > 0).length,
    };
  }),
  page_width: document.documentElement.scrollWidth,
  window_width: window.innerWidth,
  tables: [...document.querySelectorAll('.tablewrap')].map(w => ({
    box: w.getBoundingClientRect().right,
    main: document.querySelector('main').getBoundingClientRect().right,
    sticky: getComputedStyle(w.querySelector('thead')).position,
    overflow: getComputedStyle(w).overflowX,
    scroll: w.scrollWidth, client: w.clientWidth,
    groups: [...w.querySelectorAll('thead tr.groups th')].map(th => th.textContent),
  })),
})"""


class _Chromium:
    """Just enough of the DevTools protocol: commands, and the events seen meanwhile."""

    def __init__(self, binary: str, profile: Path) -> None:
        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # the shell hands our pipes to the browser as its fds 3 (in) and 4 (out)
        self.proc = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null', *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.next_id = 0
        self.buffer = b""
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session is not None:
            msg["sessionId"] = session
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + _TIMEOUT_S
        while not any(e["method"] == event for e in self.events):
            msg = self._read_message(deadline)
            if "method" in msg:
                self.events.append(msg)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def _problems(events: list[dict[str, Any]]) -> list[str]:
    """Console errors and warnings, uncaught exceptions and error log entries."""
    out = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning"):
            out.append(f"console.{p['type']}: {p.get('args')}")
        elif e["method"] == "Runtime.exceptionThrown":
            out.append(f"exception: {p.get('exceptionDetails')}")
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            out.append(f"log {p['entry']['level']}: {p['entry'].get('text')}")
    return out


def _load(page: Path, profile: Path) -> tuple[dict[str, Any], list[str]]:
    browser = _Chromium(str(_BROWSER), profile)
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=_WIDTH,
            height=_HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.send("Page.navigate", session, url=page.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        probe = browser.send("Runtime.evaluate", session, expression=_PROBE, returnByValue=True)
        info: dict[str, Any] = json.loads(probe["result"]["value"])
        return info, _problems(browser.events)
    finally:
        browser.close()


def test_page_in_headless_chromium(
    records: list[BenchRecord], retrieval_records: list[BenchRecord], tmp_path: Path
) -> None:
    long_name = BenchRecord(
        "ctr",
        "synthetic",
        "qr(collisions=4, operation='mult')",
        model="deepfm",
        compression=10.0,
        memory_bytes=30_000,
        metrics={"auc": 0.75},
        seed=0,
    )
    page = render_report([*records, *retrieval_records, long_name], tmp_path / "out")
    info, problems = _load(page, tmp_path / "profile")
    assert problems == []
    labels = [p["label"] for p in info["plots"]]
    # ctr: Pareto + training curves; retrieval: recall vs bytes + recall vs QPS
    assert len(labels) == 4, labels
    for plot in info["plots"]:
        assert plot["width"] > 400 and plot["height"] > 200, plot
        assert len(plot["xticks"]) >= 2 and len(plot["yticks"]) >= 2, plot
        assert len(plot["legend"]) >= 2, plot
        assert plot["drawn"] > 10, plot  # the texts are laid out, not just present
    pareto, history, recall_bytes, recall_qps = info["plots"]
    axis_labels = [
        (pareto, ("memory (bytes, log scale)", "auc")),
        (history, ("epoch", "train loss", "valid AUC")),
        (recall_bytes, ("RAM bytes per vector (log scale)", "recall@10")),
        (recall_qps, ("recall@10", "qps 1thread (queries/s, log scale)")),
    ]
    for plot, names in axis_labels:
        assert set(names) <= set(plot["texts"]), plot["label"]
    assert {"full", "hash", "qr", "tt_rec", "Pareto frontier"} <= set(pareto["legend"])
    assert "full (reference) 0.8010" in pareto["legend"] and "oracle 0.8123" in pareto["legend"]
    assert {"1 KB", "10 KB", "100 KB"} <= set(pareto["xticks"])
    assert "full @ 1×" in history["legend"] and "1" in history["xticks"]
    assert {"Flat", "Int8", "PQ8"} <= set(recall_bytes["legend"])
    assert "10 B" in recall_bytes["xticks"]
    assert "50,000" in recall_qps["yticks"] and "Pareto frontier" in recall_qps["legend"]
    # the page does not scroll sideways: wide tables scroll inside their own box
    assert info["page_width"] <= info["window_width"]
    for table in info["tables"]:
        assert table["box"] <= table["main"] + 0.5
        assert table["sticky"] == "sticky" and table["overflow"] == "auto"
        assert table["groups"][:2] == ["run", "metrics"]
        assert table["scroll"] <= table["client"]  # at 1400 px these tables fit their box
