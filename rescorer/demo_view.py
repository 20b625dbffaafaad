"""What the demo shows while it runs: populations, latest changes, drift, throughput.

Fed from the worker's output topics and its /metrics; rendered with rich on a
terminal, or as plain progress lines when stdout is not one (CI, a pipe).
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.model import SegmentModel
from schemas.segments import FEATURE_NAMES

PSI_ALARM = 0.25


@dataclass
class DemoView:
    """The demo's picture of the stream, built from what the worker emits."""

    model: SegmentModel
    started: float = field(default_factory=time.monotonic)
    segment_of: dict[str, int] = field(default_factory=dict)
    features_of: dict[str, tuple[float, float, float, datetime]] = field(default_factory=dict)
    recent: deque[tuple[str, str, str, str, str]] = field(default_factory=lambda: deque(maxlen=8))
    reasons: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    events_sent: int = 0
    malformed_sent: int = 0
    clock: datetime | None = None
    live_start: datetime | None = None
    expected_customers: int = 0
    caught_up: bool = False
    psi: dict[str, float] = field(default_factory=dict)
    psi_peak: dict[str, float] = field(default_factory=dict)
    detections: int = 0
    retrain_requests: list[str] = field(default_factory=list)

    def name(self, segment_id: int | None) -> str:
        """A segment's name in the active model ('-' for none)."""
        if segment_id is None:
            return "-"
        for segment in self.model.segments:
            if segment.segment_id == segment_id:
                return segment.name
        return str(segment_id)

    def on_change(self, value: bytes) -> None:
        """A `SegmentChange` from the changes topic."""
        change = json.loads(value)
        self.reasons[change["reason"]] += 1
        self.recent.appendleft(
            (
                change["as_of"][:10],
                change["customer_id"],
                self.name(change["previous_segment_id"]),
                change["segment_name"],
                change["reason"],
            )
        )

    def on_assignment(self, value: bytes) -> None:
        """A `SegmentAssignment` from the compacted assignments topic."""
        assignment = json.loads(value)
        customer = assignment["customer_id"]
        self.segment_of[customer] = assignment["segment_id"]
        f = assignment["features"]
        as_of = datetime.fromisoformat(assignment["as_of"])
        if (
            self.live_start is not None
            and as_of >= self.live_start
            and len(self.segment_of) >= 0.98 * self.expected_customers
        ):
            self.caught_up = True  # the worker has read the history and reached live traffic
        self.features_of[customer] = (f["recency_days"], f["frequency"], f["monetary"], as_of)

    def on_dead_letter(self, value: bytes) -> None:
        """A `DeadLetter`."""
        self.dead_letters[json.loads(value)["error_type"]] += 1

    def populations(self) -> list[tuple[str, int, float]]:
        """(segment name, customers, share) in model order."""
        counts = Counter(self.segment_of.values())
        total = max(1, sum(counts.values()))
        return [
            (s.name, counts[s.segment_id], counts[s.segment_id] / total)
            for s in self.model.segments
        ]

    def on_metrics(self, series: dict[str, float]) -> None:
        """A scrape of the worker's /metrics: its drift figures."""
        for name in FEATURE_NAMES:
            value = series.get(f'rescorer_feature_psi{{feature="{name}"}}')
            if value is not None:
                self.psi[name] = value
        self.detections = int(series.get("rescorer_drift_detections_total", 0))

    def on_retrain_request(self, value: bytes) -> None:
        """A `RetrainRequest` the worker published."""
        request = json.loads(value)
        self.retrain_requests.append(", ".join(request["evidence"]["triggers"]))

    def drift(self) -> dict[str, float]:
        """The worker's PSI per feature, once it has caught up with the history."""
        if not self.caught_up:
            return {}
        for feature, value in self.psi.items():
            self.psi_peak[feature] = max(value, self.psi_peak.get(feature, 0.0))
        return dict(self.psi)

    def line(self) -> str:
        """One plain progress line."""
        elapsed = time.monotonic() - self.started
        drift = self.drift()
        pops = " ".join(f"{n}={c}" for n, c, _ in self.populations())
        reasons = " ".join(f"{r}={n}" for r, n in sorted(self.reasons.items())) or "none"
        psi_text = " ".join(f"{n[:3]}={v:.2f}" for n, v in drift.items()) or "n/a"
        clock = f"{self.clock:%Y-%m-%d}" if self.clock else "-"
        return (
            f"[{elapsed:6.1f}s] clock {clock} sent {self.events_sent} "
            f"(dlq {self.dead_letters.total()}/{self.malformed_sent}) | {pops} | "
            f"changes {reasons} | psi {psi_text} | detections {self.detections} "
            f"retrain requests {len(self.retrain_requests)}"
        )

    def render(self, rate: float) -> Any:
        """A rich renderable of the whole view."""
        from rich.console import Group
        from rich.table import Table

        head = Table.grid(padding=(0, 2))
        head.add_row(
            f"[b]event time[/b] {self.clock:%Y-%m-%d %H:%M}" if self.clock else "event time -",
            f"[b]sent[/b] {self.events_sent} ({rate:,.0f}/s)",
            f"[b]dead letters[/b] {self.dead_letters.total()} of {self.malformed_sent} malformed",
        )
        populations = Table(title=f"segments (model v{self.model.version})", expand=False)
        for column in ("segment", "customers", "share"):
            populations.add_column(column, justify="right" if column != "segment" else "left")
        for name, count, share in self.populations():
            populations.add_row(name, str(count), f"{share:.1%}")
        drift = Table(
            title=f"drift (worker PSI vs training; {self.detections} detections, "
            f"{len(self.retrain_requests)} retrain requests)"
        )
        drift.add_column("feature")
        drift.add_column("PSI", justify="right")
        for name, value in self.drift().items():
            style = "red" if value > PSI_ALARM else ""
            drift.add_row(name, f"[{style}]{value:.3f}[/{style}]" if style else f"{value:.3f}")
        changes = Table(title="latest segment changes")
        for column in ("as of", "customer", "from", "to", "reason"):
            changes.add_column(column)
        for row in self.recent:
            changes.add_row(*row)
        reasons = " ".join(f"{r}={n}" for r, n in sorted(self.reasons.items())) or "none yet"
        return Group(head, populations, drift, f"changes by reason: {reasons}", changes)
