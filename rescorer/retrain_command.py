"""``rescorer retrain``: the drift-driven retraining job (cron, Kubernetes CronJob).

Exit codes: 0 when a candidate was promoted or nothing was pending, 3 when a
candidate was trained but failed a quality gate (the reasons are printed),
2 for bad input, 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rescorer.common import float_in, load_settings, progress_reporter
from rescorer.train_command import add_training_arguments, train_from_args
from schemas.retrain import DEFAULT_RETRAIN_GROUP

NOT_PROMOTED = 3


def register(commands: Any) -> None:
    """Add the ``retrain`` subcommand."""
    from offline.quality_gates import QualityGates

    gates = QualityGates()
    parser = commands.add_parser(
        "retrain",
        help="train on pending retrain requests; promote the candidate if it passes the gates",
    )
    add_training_arguments(parser)
    parser.add_argument(
        "--force", action="store_true", help="train even when no request is pending"
    )
    parser.add_argument(
        "--group",
        default=DEFAULT_RETRAIN_GROUP,
        help=f"consumer group of the job (default {DEFAULT_RETRAIN_GROUP})",
    )
    parser.add_argument(
        "--max-silhouette-drop",
        type=float_in(0.0, 2.0, "--max-silhouette-drop"),
        default=gates.max_silhouette_drop,
        help=f"how far below the active model's (default {gates.max_silhouette_drop})",
    )
    parser.add_argument(
        "--max-davies-bouldin-rise",
        type=float_in(0.0, 100.0, "--max-davies-bouldin-rise"),
        default=gates.max_davies_bouldin_rise,
        help=f"how much higher than the active model's (default {gates.max_davies_bouldin_rise})",
    )
    parser.add_argument(
        "--min-bootstrap-ari",
        type=float_in(-1.0, 1.0, "--min-bootstrap-ari"),
        default=gates.min_bootstrap_ari,
        help=f"smallest acceptable stability (default {gates.min_bootstrap_ari})",
    )
    parser.add_argument(
        "--max-feedback-drop",
        type=float_in(0.0, 1.0, "--max-feedback-drop"),
        default=gates.max_feedback_drop,
        help="how much less of the feedback than the active model the candidate may agree "
        f"with (default {gates.max_feedback_drop}); checked from {gates.min_feedback_records} "
        "feedback records on",
    )
    parser.add_argument(
        "--no-publish",
        action="store_true",
        help="promote in the registry only; do not publish to the models topic",
    )
    parser.add_argument(
        "--result",
        type=Path,
        metavar="FILE",
        help="write what the run did (candidate, promoted, failures, published) as JSON",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read requests, train, compare, promote (or explain why not)."""
    from offline.errors import InputError, KafkaUnavailable
    from offline.kafka_io import read_latest_feedback
    from offline.model_comparison import (
        compare,
        feedback_agreement,
        feedback_gate,
        feedback_rows,
    )
    from offline.publishing import promote, publish_active, store
    from offline.quality_gates import QualityGates
    from offline.retrain_requests import read_pending
    from rescorer.errors import RuntimeFailure, UsageError
    from schemas.registry import ModelRegistry
    from schemas.segments import FEATURE_NAMES

    settings = load_settings()
    registry = ModelRegistry(args.model_dir or settings.model_dir)
    active = registry.active()
    try:
        pending = read_pending(settings, args.group)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    except KafkaUnavailable as exc:
        raise RuntimeFailure(str(exc)) from exc
    try:
        current = [
            r for r in pending.requests if active is None or r.model_version >= active.version
        ]
        _print_pending(pending, current)
        if not current and not args.force:
            print("nothing to do")
            pending.acknowledge()
            return 0
        with progress_reporter() as progress:
            log, result = train_from_args(args, settings, active, registry.next_version(), progress)
        stored = store(settings, registry, result, log.rejections)
        candidate, path = stored.model, stored.path
        raw = (
            result.features.select(FEATURE_NAMES).to_numpy().astype("float64")[result.sample_index]
        )
        gates = QualityGates(
            args.max_silhouette_drop, args.max_davies_bouldin_rise, args.min_bootstrap_ari,
            args.max_feedback_drop,
        )  # fmt: skip
        verdict = compare(candidate, active, raw, gates)
        _print_comparison(verdict, active.version if active else None, candidate.version, len(raw))
        rows, proposed = feedback_rows(result.features, read_latest_feedback(settings))
        agreement = feedback_agreement(candidate, active, rows, proposed)
        _print_feedback(agreement, gates.min_feedback_records)
        failure = feedback_gate(agreement, gates.max_feedback_drop, gates.min_feedback_records)
        if failure is not None:
            verdict.failures.append(failure)
        _print_segments(candidate, active)
        pending.acknowledge()
    finally:
        pending.close()
    print(f"candidate v{candidate.version} saved to {path}")
    outcome = Outcome(candidate.version, verdict.passed, tuple(verdict.failures), False)
    if not verdict.passed:
        print(f"not promoted: {'; '.join(verdict.failures)}")
        _write_result(args.result, outcome)
        return NOT_PROMOTED
    promote(registry, candidate, always=True)
    print(f"promoted v{candidate.version}")
    if not args.no_publish:
        publish_active(settings, registry)
        print(f"published v{candidate.version} to {settings.topics.models}")
    _write_result(args.result, replace(outcome, published=not args.no_publish))
    return 0


@dataclass(frozen=True)
class Outcome:
    """What a retrain did, as `--result` writes it (JSON) for a caller to read."""

    candidate: int
    promoted: bool
    failures: tuple[str, ...]
    published: bool

    @classmethod
    def read(cls, path: Path) -> Outcome:
        """An outcome `--result` wrote."""
        data = json.loads(path.read_text())
        return cls(int(data["candidate"]), bool(data["promoted"]),
                   tuple(str(f) for f in data["failures"]), bool(data["published"]))  # fmt: skip


def _write_result(path: Path | None, outcome: Outcome) -> None:
    if path is not None:
        path.write_text(json.dumps(asdict(outcome)))


def _print_pending(pending: Any, current: list[Any]) -> None:
    stale = len(pending.requests) - len(current)
    print(
        f"{len(pending.requests)} pending retrain request(s)"
        + (f", {stale} for superseded models" if stale else "")
        + (f", {pending.invalid} unreadable" if pending.invalid else "")
    )
    for request in current:
        print(
            f"  {request.raised_at.isoformat()} {request.raised_by} "
            f"on v{request.model_version}: " + ", ".join(request.evidence.triggers)
        )


def _print_feedback(agreement: Any, min_records: int) -> None:
    if not agreement.records:
        print("feedback: none on today's customers")
        return
    active = "-" if agreement.active is None else f"{agreement.active:.1%}"
    checked = "" if agreement.records >= min_records else f" (fewer than {min_records}: not a gate)"
    print(
        f"feedback agreement on {agreement.records} records: candidate "
        f"{agreement.candidate:.1%}, active {active}{checked}"
    )


def _print_comparison(verdict: Any, active: int | None, candidate: int, customers: int) -> None:
    print(f"quality on the same {customers} customers (each model in its own space):")
    print(f"  {'':<16}{'active v' + str(active) if active else 'no active model':>16}"
          f"{'candidate v' + str(candidate):>16}")  # fmt: skip
    mine, theirs = verdict.candidate, verdict.active
    for label, attribute in (("silhouette", "silhouette"), ("Davies-Bouldin", "davies_bouldin")):
        before = f"{getattr(theirs, attribute):.3f}" if theirs else "-"
        print(f"  {label:<16}{before:>16}{getattr(mine, attribute):>16.3f}")
    if verdict.bootstrap_ari is not None:
        print(f"  {'bootstrap ARI':<16}{'':>16}{verdict.bootstrap_ari:>16.3f}")


def _print_segments(candidate: Any, active: Any) -> None:
    before = {s.segment_id: s.name for s in active.segments} if active else {}
    for segment in candidate.segments:
        kept = segment.segment_id in before
        note = f"(was {before[segment.segment_id]})" if kept else "(new id)"
        share = segment.profile.share if segment.profile else 0.0
        print(f"  {segment.segment_id:>3}  {segment.name:<20} {share:6.1%}  {note}")
