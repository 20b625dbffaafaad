"""Train a validated, named, versioned `SegmentModel` from an event log."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from offline.action_cards import behaviour, interacts, lever, migration, values
from offline.algorithms import SAMPLE as ALGORITHM_SAMPLE
from offline.algorithms import choose, compare_algorithms
from offline.clv_fit import PurchaseSummary
from offline.customer_table import CustomerTable, Horizon
from offline.errors import InputError
from offline.features import rfm_features
from offline.history import EventHistory
from offline.identity import assign_ids
from offline.naming import describe, name_segments, percentile_scores
from offline.predictive import (
    PERTURBATIONS,
    PREDICTIVE_SAMPLE,
    cross_validated_ari,
    fragile,
    moved_share,
    perturbed,
    predictive_validity,
    strong_correlations,
)
from offline.segmenter import DEFAULT_TRANSFORMS, SILHOUETTE_SAMPLE, KCandidate, RfmSegmenter
from offline.traits import purchase_model, segment_traits, summary_at
from offline.validation import (
    Holdout,
    InternalMetrics,
    Stability,
    bootstrap_stability,
    internal_metrics,
    kpi_pvalues,
    kpi_table,
)
from schemas.model import (
    CORRELATION_WARNING,
    UNSTABLE_JACCARD,
    UNSTABLE_RETENTION,
    FeatureDefinition,
    MembershipCalibration,
    ReferenceDistribution,
    Scaler,
    Segment,
    SegmentModel,
    SegmentProfile,
    ValidationMetrics,
)
from schemas.package import PACKAGE_VERSION
from schemas.segments import FEATURE_NAMES
from schemas.traits import PurchaseModel, SegmentTraits
from scoring.drift import proportions, reference_edges
from scoring.membership import BOUNDARY_CONFIDENCE, confidence, fit_temperature
from scoring.rfm import DEFAULT_WINDOW_DAYS
from scoring.space import ModelSpace

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained model."""

    as_of: datetime | None = None
    window_days: int = DEFAULT_WINDOW_DAYS
    k: str | int = "auto"
    k_range: tuple[int, int] = (3, 7)
    min_share: float = 0.02
    n_init: int = 4
    seed: int = 0
    selection_sample: int = 20_000
    validation_sample: int = 5_000
    bootstrap_resamples: int = 20
    holdout_days: int = 90
    version: int = 1
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Per feature (`FEATURE_NAMES` order), multiplying its standardised coordinate."""


@dataclass
class TrainResult:
    """The artifact plus what the report needs to explain it."""

    model: SegmentModel
    features: pl.DataFrame
    segment_ids: IntArray
    candidates: list[KCandidate]
    internal: InternalMetrics
    sample_index: NDArray[np.int64]
    stability: Stability
    holdout: Holdout | None
    kpis: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def _quiet(_: str) -> None:
    return None


ASSIGN_CHUNK = 1_000_000
"""Rows per block where every customer is measured against the centroids."""


@dataclass(frozen=True)
class _Data:
    """The customers a run trains on: their table, features and feature matrix."""

    horizon: Horizon
    earliest: datetime
    latest: datetime
    events: int
    table: CustomerTable
    features: pl.DataFrame
    raw: FloatArray


@dataclass(frozen=True)
class _Fitted:
    """The chosen segmentation: the estimator, its space, and the segments' identities."""

    segmenter: RfmSegmenter
    space: ModelSpace
    ids: list[int]
    highest_id: int
    names: list[str]
    centroid_scores: FloatArray
    segment_ids: IntArray
    notes: list[str]

    @property
    def k(self) -> int:
        return int(self.segmenter.k_)


@dataclass(frozen=True)
class _Checks:
    """Every validation figure of a fitted segmentation."""

    sample: IntArray
    internal: InternalMetrics
    stability: Stability
    holdout: Holdout | None
    kpis: pl.DataFrame
    pvalues: dict[str, float]
    cv_ari: tuple[float, float]
    sensitivity: dict[str, float]
    correlations: dict[str, float]
    algorithms: dict[str, dict[str, float]]
    notes: list[str]


def train(
    history: EventHistory,
    config: TrainConfig,
    previous: SegmentModel | None = None,
    progress: Progress = _quiet,
) -> TrainResult:
    """Fit, validate, name and package segments for the events in `history`."""
    data = _data(history, config, progress)
    # The predictive fit needs only the customer table: it runs beside the segments'
    # fit and validation (numpy, scipy and polars release the GIL in their loops).
    # The segments' k-means and distances then run on one native thread each: beside the
    # fit on the other core, OpenMP and BLAS threads spinning for a busy core made the
    # k selection several times slower than one thread.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="purchase-model") as pool:
        summary = summary_at(data.table, data.horizon.as_of)
        fitting = pool.submit(purchase_model, data.table, data.horizon, summary)
        with threadpool_limits(limits=1):
            fitted = _fit(data, config, previous, progress)
            # The segments' traits wait for the fit, on the fit's thread: beside the checks.
            profiling = pool.submit(_segment_traits, fitting, summary, fitted.segment_ids)
            checks = _check(history, data, fitted, config, progress)
            # Packaging needs no trait either: beside the fit's end too.
            packaged = _package(data, fitted, checks, config, previous)
        progress("fitting BG/NBD and Gamma-Gamma for the predictive traits")
        traits, by_segment = fitting.result(), profiling.result()
    model = _with_traits(packaged, traits, by_segment)
    return TrainResult(
        model, data.features, fitted.segment_ids, fitted.segmenter.candidates_, checks.internal,
        checks.sample, checks.stability, checks.holdout, checks.kpis, fitted.notes + checks.notes,
    )  # fmt: skip


def _segment_traits(
    fitting: Future[PurchaseModel | None], summary: PurchaseSummary, segment_ids: IntArray
) -> dict[int, SegmentTraits]:
    """Each segment's members' traits under the fitted model (none without one)."""
    traits = fitting.result()
    return {} if traits is None else segment_traits(traits, summary, segment_ids)


def _with_traits(
    model: SegmentModel, traits: PurchaseModel | None, by_segment: dict[int, SegmentTraits]
) -> SegmentModel:
    """The artifact with its predictive model, and each segment's members' traits."""
    if traits is None:
        return model
    segments = tuple(
        s.model_copy(
            update={
                "profile": s.profile.model_copy(update={"traits": by_segment.get(s.segment_id)})
            }
        )
        if s.profile is not None
        else s
        for s in model.segments
    )
    return model.model_copy(update={"traits": traits, "segments": segments})


def _data(history: EventHistory, config: TrainConfig, progress: Progress) -> _Data:
    span = history.span()
    earliest, latest = span.earliest, span.latest
    as_of = config.as_of or latest
    if as_of < earliest:
        raise InputError(
            f"--as-of {as_of.isoformat()} is before every event (first at {earliest.isoformat()})"
        )
    then = as_of - timedelta(days=config.holdout_days) if config.holdout_days > 0 else None
    horizon = Horizon(as_of, config.window_days, then)
    progress("computing per-customer features (as of T and T-H), outcomes, behaviour")
    table = history.customers(horizon)
    features = table.features(horizon)
    low_k = int(config.k) if config.k != "auto" else config.k_range[0]
    if features.height <= low_k:
        raise InputError(
            f"{features.height} customers with a purchase by {as_of.isoformat()}, "
            f"too few for {low_k} segments"
        )
    raw = features.select(FEATURE_NAMES).to_numpy().astype(np.float64)
    return _Data(horizon, earliest, latest, span.events, table, features, raw)


def _fit(
    data: _Data, config: TrainConfig, previous: SegmentModel | None, progress: Progress
) -> _Fitted:
    raw = data.raw
    progress(
        f"choosing k in {config.k_range} on {min(len(raw), config.selection_sample)} customers"
    )
    segmenter = RfmSegmenter(
        k=config.k,
        k_range=config.k_range,
        n_init=config.n_init,
        selection_sample=config.selection_sample,
        min_share=config.min_share,
        random_state=config.seed,
        weights=config.weights,
    ).fit(raw)
    notes: list[str] = []
    if not any(c.eligible for c in segmenter.candidates_):
        notes.append(
            f"no k met the {config.min_share:.0%} materiality floor; "
            f"best silhouette kept (k={segmenter.k_})"
        )
    scaler = segmenter.scaler_
    space = ModelSpace.from_parts(
        DEFAULT_TRANSFORMS,
        scaler.mean_,
        scaler.scale_ / np.asarray(config.weights, dtype=np.float64),
        segmenter.cluster_centers_,
        range(segmenter.k_),
    )
    labels = segmenter.labels_
    # A segment's R/F/M scores are its members' mean percentile scores; scoring the
    # centroid alone misleads where many customers tie (e.g. frequency 0). Estimated
    # on the selection sample unless a segment has no member there.
    scored = segmenter.sample_index_
    if len(np.unique(labels[scored])) < segmenter.k_:
        scored = np.arange(len(raw))
    member_scores = percentile_scores(raw[scored], raw[scored])
    centroid_scores = np.vstack(
        [member_scores[labels[scored] == i].mean(axis=0) for i in range(segmenter.k_)]
    )
    ids, highest_id = assign_ids(space, centroid_scores, previous)
    segment_ids = np.asarray(ids, dtype=np.int64)[labels]
    names = name_segments(centroid_scores)
    return _Fitted(segmenter, space, ids, highest_id, names, centroid_scores, segment_ids, notes)


def _check(
    history: EventHistory, data: _Data, fitted: _Fitted, config: TrainConfig, progress: Progress
) -> _Checks:
    progress("validating: silhouette, bootstrap stability")
    raw, labels, k = data.raw, fitted.segmenter.labels_, fitted.k
    rng = np.random.default_rng(config.seed)
    n = len(raw)
    sample = (
        np.arange(n)
        if n <= config.validation_sample
        else np.sort(rng.choice(n, config.validation_sample, replace=False))
    )
    embedded = fitted.segmenter.embedded_
    internal = internal_metrics(embedded[sample], labels[sample])
    stability = bootstrap_stability(
        embedded[sample], labels[sample], k, config.bootstrap_resamples, config.seed
    )
    progress(f"validating: temporal holdout ({config.holdout_days} days)")
    notes: list[str] = []
    holdout = _holdout(data.table, data.horizon, config, k, raw, labels, notes)
    kpis = kpi_table(data.features, labels, config.window_days)
    # On the validation sample: with a million rows every difference is "significant".
    pvalues = kpi_pvalues(data.features[sample.tolist()], labels[sample])
    progress("validating: cross-validation, sensitivity, variable checks")
    cv_ari = cross_validated_ari(embedded[sample], labels[sample], k, seed=config.seed)
    as_of = data.horizon.as_of
    sensitivity = _sensitivity(history, config, as_of, fitted.space, raw, data.features, sample)
    correlations = strong_correlations(embedded, FEATURE_NAMES)
    for pair, r in correlations.items():
        if abs(r) > CORRELATION_WARNING:
            notes.append(f"features {pair.replace('~', ' and ')} correlate at r={r:.2f}: "
                         "they weigh the same behaviour twice")  # fmt: skip
    progress("comparing k-means with GaussianMixture and Ward")
    algorithms = compare_algorithms(embedded[sample], k, config.seed)
    return _Checks(
        sample, internal, stability, holdout, kpis, pvalues, cv_ari, sensitivity, correlations,
        algorithms, notes,
    )  # fmt: skip


def _validation(
    fitted: _Fitted, checks: _Checks, data: _Data, previous: SegmentModel | None
) -> ValidationMetrics:
    ids, k, holdout, stability = fitted.ids, fitted.k, checks.holdout, checks.stability
    retention = holdout.retention_by_label if holdout else {}
    unstable = tuple(
        str(ids[lab])
        for lab in range(k)
        if stability.jaccard_by_label.get(lab, 1.0) < UNSTABLE_JACCARD
        or retention.get(lab, 1.0) < UNSTABLE_RETENTION
    )
    predictive = holdout.predictive if holdout else None
    moved = (
        migration(
            np.asarray([s.segment_id for s in previous.segments])[
                ModelSpace.from_model(previous).nearest(data.raw)
            ].tolist(),
            fitted.segment_ids.tolist(),
        )
        if previous is not None
        else {}
    )
    internal = checks.internal
    return ValidationMetrics(
        silhouette=internal.silhouette,
        davies_bouldin=internal.davies_bouldin,
        calinski_harabasz=internal.calinski_harabasz,
        bootstrap_ari=stability.mean_ari,
        segment_jaccard={str(ids[lab]): v for lab, v in stability.jaccard_by_label.items()},
        holdout_ari=holdout.ari if holdout else None,
        holdout_changed_share=holdout.changed_share if holdout else None,
        kpi_pvalues=checks.pvalues,
        k_selection={str(c.k): c.silhouette for c in fitted.segmenter.candidates_},
        predictive=predictive.as_metrics() if predictive else {},
        churn_by_segment=(
            {str(ids[lab]): v for lab, v in holdout.churn_by_label.items() if lab >= 0}
            if holdout
            else {}
        ),
        holdout_retention={str(ids[lab]): v for lab, v in retention.items()},
        cv_ari_mean=checks.cv_ari[0],
        cv_ari_std=checks.cv_ari[1],
        sensitivity=checks.sensitivity,
        fragile=fragile(checks.sensitivity),
        feature_correlation=checks.correlations,
        unstable_segments=unstable,
        algorithms=checks.algorithms,
        algorithm_choice=choose(checks.algorithms),
        migration_from_previous=moved,
    )


def _package(
    data: _Data,
    fitted: _Fitted,
    checks: _Checks,
    config: TrainConfig,
    previous: SegmentModel | None,
) -> SegmentModel:
    raw, space, segmenter, sample = data.raw, fitted.space, fitted.segmenter, checks.sample
    embedded = segmenter.embedded_
    # In chunks: an (n, k) distance matrix for 10M customers is not needed at once.
    near_boundary = np.concatenate(
        [
            confidence(space.distances(embedded[start : start + ASSIGN_CHUNK]))
            < BOUNDARY_CONFIDENCE
            for start in range(0, len(embedded), ASSIGN_CHUNK)
        ]
    )
    temperature, calibration_error = fit_temperature(
        space.distances(embedded[sample]), checks.stability.kept_share
    )
    refund_rate, channel_mix = behaviour(data.table, fitted.segment_ids)
    segments = _segments(
        data.features, raw, segmenter.labels_, space, fitted.ids, fitted.names,
        fitted.centroid_scores, checks.kpis, near_boundary, refund_rate, channel_mix,
    )  # fmt: skip
    scaler = segmenter.scaler_
    as_of = data.horizon.as_of
    return SegmentModel(
        version=config.version,
        created_at=datetime.now(UTC),
        as_of=as_of,
        training_start=data.earliest,
        training_end=min(data.latest, as_of),
        n_customers=data.features.height,
        n_events=data.events,
        features=FeatureDefinition(
            window_days=config.window_days,
            weights=dict(zip(FEATURE_NAMES, config.weights, strict=True)),
        ),
        scaler=Scaler(
            mean=tuple(float(x) for x in scaler.mean_), scale=tuple(float(x) for x in scaler.scale_)
        ),
        segments=tuple(sorted(segments, key=lambda s: s.segment_id)),
        reference={name: _reference(raw[:, i]) for i, name in enumerate(FEATURE_NAMES)},
        validation=_validation(fitted, checks, data, previous),
        membership=MembershipCalibration(
            temperature=temperature,
            calibration_error=min(1.0, calibration_error),
            customers=len(sample),
        ),
        parameters=_parameters(config, fitted, previous),
        package_version=PACKAGE_VERSION,
    )


def _parameters(
    config: TrainConfig, fitted: _Fitted, previous: SegmentModel | None
) -> dict[str, str | int | float | bool | None]:
    return {
        "k": fitted.k,
        "k_min": config.k_range[0],
        "k_max": config.k_range[1],
        "seed": config.seed,
        "n_init": config.n_init,
        "min_share": config.min_share,
        "selection_sample": config.selection_sample,
        "validation_sample": config.validation_sample,
        "bootstrap_resamples": config.bootstrap_resamples,
        "holdout_days": config.holdout_days,
        "predictive_sample": PREDICTIVE_SAMPLE,
        "algorithm_sample": ALGORITHM_SAMPLE,
        "silhouette_sample": SILHOUETTE_SAMPLE,
        "max_segment_id": fitted.highest_id,
        "previous_version": previous.version if previous else None,
    }


def _sensitivity(
    history: EventHistory,
    config: TrainConfig,
    as_of: datetime,
    space: ModelSpace,
    raw: FloatArray,
    features: pl.DataFrame,
    sample: IntArray,
) -> dict[str, float]:
    """Share of the validation sample whose segment changes under each perturbation."""
    rng = np.random.default_rng(config.seed)
    rows = raw[sample]
    base = space.nearest(rows)
    shares = {
        name: moved_share(base, space.nearest(perturbed(rows, feature, size, rng)))
        for name, feature, size in PERTURBATIONS
    }
    # Dropping 5% of the events: recompute the sample's features and compare those still there.
    ids = features[sample.tolist()].select("customer_id").with_row_index("row")
    theirs = history.events_of(ids["customer_id"])
    thinned = rfm_features(theirs.sample(fraction=0.95, seed=config.seed), as_of,
                           config.window_days)  # fmt: skip
    both = ids.join(thinned, on="customer_id", how="inner")
    after = space.nearest(both.select(FEATURE_NAMES).to_numpy().astype(np.float64))
    dropped = 1.0 - both.height / max(1, len(sample))  # customers left without a purchase
    moved = float(np.sum(base[both["row"].to_numpy()] != after)) / max(1, len(sample))
    shares["drop 5% of events"] = moved + dropped
    return shares


def _reference(values: FloatArray) -> ReferenceDistribution:
    edges = reference_edges(values)
    return ReferenceDistribution(
        bin_edges=tuple(edges), proportions=tuple(proportions(values, edges))
    )


def _holdout(
    table: CustomerTable,
    horizon: Horizon,
    config: TrainConfig,
    k: int,
    raw_now: FloatArray,
    labels_now: IntArray,
    notes: list[str],
) -> Holdout | None:
    """Fit as of T-H, assign as of T, compare with the fit as of T."""
    then = horizon.then
    if then is None:
        return None
    features_then = table.features(horizon, then=True)
    if features_then.height <= k * 2:
        notes.append(
            f"temporal holdout skipped: only {features_then.height} customers as of {then.date()}"
        )
        return None
    raw_then = features_then.select(FEATURE_NAMES).to_numpy().astype(np.float64)
    past = RfmSegmenter(
        k=k,
        n_init=config.n_init,
        selection_sample=config.selection_sample,
        random_state=config.seed,
        weights=config.weights,
        full_fit=False,
    ).fit(raw_then)
    labels_past_now = past.predict(raw_now)
    ari = float(adjusted_rand_score(labels_now, labels_past_now))
    # Everyone with a purchase by T-H has one by T: row i of then is row present[i] of now.
    present = table.then_in_now()
    changed = float(np.mean(past.labels_ != labels_past_now[present])) if len(present) else 0.0
    # Match the T-H fit's segments to today's by overlap on today's customers.
    overlap = np.zeros((k, k), dtype=np.int64)
    np.add.at(overlap, (labels_now, labels_past_now), 1)
    today, then_label = linear_sum_assignment(-overlap)
    to_today = np.full(k, -1, dtype=np.int64)
    to_today[then_label] = today
    kept = to_today[past.labels_] == labels_now[present]
    retention = {
        lab: float(kept[labels_now[present] == lab].mean())
        for lab in range(k)
        if (labels_now[present] == lab).any()
    }
    bought, spend = table.outcomes()
    predictive = predictive_validity(past.labels_, past.embedded_, bought, spend, config.seed)
    if predictive is None:
        notes.append("predictive validity skipped: every customer or none purchased again")
    churn = (
        {int(to_today[lab]): v for lab, v in predictive.churn_by_label.items()}
        if predictive
        else {}
    )
    return Holdout(
        config.holdout_days, ari, changed, features_then.height, retention, predictive, churn
    )


def _segments(
    features: pl.DataFrame,
    raw: FloatArray,
    labels: IntArray,
    space: ModelSpace,
    ids: list[int],
    names: list[str],
    scores: FloatArray,
    kpis: pl.DataFrame,
    near_boundary: NDArray[np.bool_],
    refund_rate: dict[int, float],
    channel_mix: dict[int, dict[str, float]],
) -> list[Segment]:
    total = len(raw)
    kpi_rows = {int(r["label"]): r for r in kpis.iter_rows(named=True)}
    peers: list[dict[str, float]] = [
        {n: float(centroid[i]) for i, n in enumerate(FEATURE_NAMES)} for centroid in space.centroids
    ]
    out = []
    for index in range(len(ids)):
        members = raw[labels == index]
        row = kpi_rows.get(index, {})
        zscores = peers[index]
        profile = SegmentProfile(
            size=len(members),
            share=len(members) / total,
            mean={
                n: float(members[:, i].mean()) if len(members) else 0.0
                for i, n in enumerate(FEATURE_NAMES)
            },
            median={
                n: float(np.median(members[:, i])) if len(members) else 0.0
                for i, n in enumerate(FEATURE_NAMES)
            },
            average_order_value=float(row.get("average_order_value") or 0.0),
            revenue_share=min(1.0, float(row.get("revenue_share") or 0.0)),
            zscores=zscores,
            description=describe(names[index], scores[index]),
            boundary_share=float(near_boundary[labels == index].mean()) if len(members) else 0.0,
            refund_rate=refund_rate.get(ids[index], 0.0),
            channel_mix=channel_mix.get(ids[index], {}),
            values=values(zscores, peers),
            interacts=interacts(channel_mix.get(ids[index], {})),
            lever=lever(zscores),
        )
        out.append(
            Segment(
                segment_id=ids[index],
                name=names[index],
                centroid=tuple(float(x) for x in space.centroids[index]),
                profile=profile,
            )
        )
    return out
