"""The CTR suite's collector: each run measured against the ``full`` reference of its seed.

Used by :func:`embedlab.bench.ctr.run_ctr_bench` (and re-exported there): a record gets
``timing["samples_per_s_vs_full"]`` and ``metrics["auc_delta_vs_full"]``; under Ray a record
measured before its reference is held until the reference is known.
"""

from __future__ import annotations

from embedlab.bench._grid import Collector
from embedlab.bench._record import BenchRecord

__all__ = ["REFERENCE", "VersusReference"]

#: the method every other one is compared with, trained once per seed
REFERENCE = "full"


class VersusReference(Collector):
    """Adds the ratios against the ``full`` reference of a record's seed; under Ray a
    record measured before its reference is held until the reference is known."""

    def __init__(self) -> None:
        self.reference: dict[int, BenchRecord] = {}
        self.held: list[BenchRecord] = []

    def known(self, record: BenchRecord) -> None:
        if record.method == REFERENCE:
            self.reference[record.seed] = record

    def add(self, record: BenchRecord) -> list[BenchRecord]:
        if record.method != REFERENCE:
            if record.seed not in self.reference:
                self.held.append(record)
                return []
            return [self._versus(record)]
        self.reference[record.seed] = record
        ready = [r for r in self.held if r.seed == record.seed]
        self.held = [r for r in self.held if r.seed != record.seed]
        return [record, *(self._versus(r) for r in ready)]

    def rest(self) -> list[BenchRecord]:
        held, self.held = self.held, []
        return held

    def _versus(self, record: BenchRecord) -> BenchRecord:
        ref = self.reference[record.seed]
        if record.status == "ok" and ref.status == "ok":
            record.timing["samples_per_s_vs_full"] = (
                record.timing["samples_per_s"] / ref.timing["samples_per_s"]
            )
            record.metrics["auc_delta_vs_full"] = record.metrics["auc"] - ref.metrics["auc"]
        return record
