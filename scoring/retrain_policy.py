"""When drift is bad enough, for long enough, to ask for a retrain.

A request is raised when any of these holds, and at most once per cooldown:

- a feature's PSI stays above its threshold for the sustain period (one
  reading above it is noise; a sustained one is a shift);
- an online centroid has moved further than the centroid threshold from its
  baseline (standardised units);
- the distance detector has alarmed at least the alarm threshold of times
  since the model was loaded or the last request.

Time is whatever monotonic clock the caller passes (seconds), so tests and
replays can drive it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.retrain import DriftEvidence
from scoring.drift_monitor import FeatureDrift


@dataclass(frozen=True)
class RetrainThresholds:
    """Every field has a worker setting ``RESCORER_RETRAIN_<FIELD>``."""

    psi: float = 0.25
    psi_sustain_seconds: float = 600.0
    centroid_drift: float = 0.5
    detector_alarms: int = 3
    cooldown_seconds: float = 6 * 3600.0
    min_customers: int = 500

    def __post_init__(self) -> None:
        if self.psi <= 0 or self.centroid_drift <= 0:
            raise ValueError("psi and centroid drift thresholds must be positive")
        if self.psi_sustain_seconds < 0 or self.cooldown_seconds < 0:
            raise ValueError("sustain and cooldown periods cannot be negative")
        if self.detector_alarms < 1 or self.min_customers < 1:
            raise ValueError("detector alarms and min customers must be at least 1")

    def as_evidence(self) -> dict[str, float]:
        """The thresholds as they travel inside a request."""
        return {
            "psi": self.psi,
            "psi_sustain_seconds": self.psi_sustain_seconds,
            "centroid_drift": self.centroid_drift,
            "detector_alarms": float(self.detector_alarms),
            "cooldown_seconds": self.cooldown_seconds,
        }


class RetrainPolicy:
    """Turns periodic drift readings into at most one request per cooldown.

    >>> from scoring.drift_monitor import FeatureDrift
    >>> policy = RetrainPolicy(RetrainThresholds(psi_sustain_seconds=60, min_customers=1))
    >>> high = FeatureDrift({"recency_days": 0.4}, {"recency_days": 0.2}, 1000)
    >>> policy.evaluate(0.0, high, {}, 0) is None       # high, not yet for long
    True
    >>> policy.evaluate(61.0, high, {}, 0).triggers
    ('feature_psi:recency_days',)
    >>> policy.evaluate(122.0, high, {}, 0) is None     # cooling down
    True
    """

    def __init__(self, thresholds: RetrainThresholds | None = None) -> None:
        self.thresholds = thresholds or RetrainThresholds()
        self._high_since: dict[str, float] = {}
        self._alarms_at_reset = 0
        self._last_request: float | None = None

    def reset(self, detections: int = 0) -> None:
        """A new model: sustained readings and alarms count from now (cooldown stays)."""
        self._high_since.clear()
        self._alarms_at_reset = detections

    def evaluate(
        self,
        now: float,
        drift: FeatureDrift,
        centroid_drift: Mapping[str, float],
        detections: int,
    ) -> DriftEvidence | None:
        """The evidence for a request when one is due now, else None."""
        t = self.thresholds
        enough = drift.customers >= t.min_customers
        triggers: list[str] = []
        for name, value in drift.psi.items():
            if enough and value > t.psi:
                since = self._high_since.setdefault(name, now)
                if now - since >= t.psi_sustain_seconds:
                    triggers.append(f"feature_psi:{name}")
            else:
                self._high_since.pop(name, None)
        triggers.extend(
            f"centroid_drift:{segment}"
            for segment, value in sorted(centroid_drift.items())
            if value > t.centroid_drift
        )
        alarms = detections - self._alarms_at_reset
        if alarms >= t.detector_alarms:
            triggers.append("detector_alarms")
        if not triggers:
            return None
        if self._last_request is not None and now - self._last_request < t.cooldown_seconds:
            return None
        self._last_request = now
        self.reset(detections)
        return DriftEvidence(
            triggers=tuple(triggers),
            feature_psi={k: round(v, 6) for k, v in drift.psi.items()},
            feature_ks={k: round(v, 6) for k, v in drift.ks.items()},
            centroid_drift={k: round(v, 6) for k, v in centroid_drift.items()},
            detector_alarms=alarms,
            thresholds=t.as_evidence(),
            scored_customers=drift.customers,
        )
