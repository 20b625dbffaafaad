"""A self-contained HTML report (PNG plots embedded) that explains the segments."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from offline.action_cards import pareto
from offline.event_validation import Rejections
from offline.plotting import png as _png
from offline.predictive import FRAGILE_NOISE, FRAGILE_SHARE
from offline.trainer import TrainResult
from offline.traits_report import traits_plots, traits_section
from schemas.model import (
    CORRELATION_WARNING,
    UNSTABLE_JACCARD,
    UNSTABLE_RETENTION,
    SegmentModel,
)
from schemas.segments import FEATURE_NAMES
from schemas.traits import SegmentTraits
from scoring.holdout import HoldoutPolicy

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%}
.note{color:#555;font-size:.92em}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.summary{background:#f5f8ff;border:1px solid #c9d6f0;padding:.2em 1em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.2em 1em}.card h3{margin:.5em 0}
"""


_SELF_CHECK = """
addEventListener("error", () => {
  const root = document.documentElement;
  root.dataset.errors = String(+(root.dataset.errors || 0) + 1);
}, true);
addEventListener("load", () => {
  const images = [...document.images];
  document.documentElement.dataset.images = String(images.length);
  document.documentElement.dataset.broken = String(
    images.filter((i) => !i.complete || i.naturalWidth === 0).length);
});
"""
"""The page counts its images, broken ones and script or load errors on its root element
(``data-images``, ``data-broken``, ``data-errors``): what a browser check reads."""


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plots(result: TrainResult) -> dict[str, bytes]:
    """The report's figures as PNG bytes, by file name."""
    segments = result.model.segments
    colors = dict(zip([s.segment_id for s in segments], _colors(len(segments)), strict=True))
    return {
        "k_selection.png": _k_selection(result),
        "silhouette.png": _silhouettes(result, colors),
        "profiles.png": _profiles(result, colors),
        "recency_monetary.png": _recency_monetary(result, colors),
        "sizes.png": _sizes(result),
    }


Colors = dict[int, tuple[float, float, float, float]]


def _k_selection(result: TrainResult) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ks = [c.k for c in result.candidates]
    ax.plot(ks, [c.silhouette for c in result.candidates], "o-", label="silhouette (higher=better)")
    ax.plot(
        ks,
        [c.davies_bouldin for c in result.candidates],
        "s--",
        label="Davies-Bouldin (lower=better)",
    )
    ax.axvline(
        int(result.model.parameters["k"] or 0), color="grey", linestyle=":", label="chosen k"
    )
    ax.set_xlabel("number of segments k")
    ax.set_title("Choosing k")
    ax.legend(fontsize=8)
    return _png(fig)


def _silhouettes(result: TrainResult, colors: Colors) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ids = result.segment_ids[result.sample_index]
    values = result.internal.silhouette_values
    y = 0
    for segment in result.model.segments:
        mine = np.sort(values[ids == segment.segment_id])
        ax.fill_betweenx(np.arange(y, y + len(mine)), 0, mine, color=colors[segment.segment_id])
        ax.text(-0.05, y + len(mine) / 2, segment.name, ha="right", va="center", fontsize=7)
        y += len(mine) + 10
    ax.axvline(result.internal.silhouette, color="red", linestyle="--", label="mean")
    ax.set_yticks([])
    ax.set_xlabel("silhouette value")
    ax.set_title("Silhouette by segment (sample)")
    ax.legend(fontsize=8)
    return _png(fig)


def _profiles(result: TrainResult, colors: Colors) -> bytes:
    segments = result.model.segments
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / max(1, len(segments))
    x = np.arange(len(FEATURE_NAMES))
    for i, segment in enumerate(segments):
        z = [segment.profile.zscores[f] if segment.profile else 0.0 for f in FEATURE_NAMES]
        label = f"{segment.segment_id}: {segment.name}"
        ax.bar(x + i * width, z, width, label=label, color=colors[segment.segment_id])
    ax.set_xticks(x + width * (len(segments) - 1) / 2, ["recency (days)", "frequency", "monetary"])
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("centroid, standard deviations")
    ax.set_title("Segment profiles: how each segment differs from the average")
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def _recency_monetary(result: TrainResult, colors: Colors) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 4))
    rng = np.random.default_rng(0)
    n = result.features.height
    pick = rng.choice(n, size=min(n, 4000), replace=False)
    recency = result.features["recency_days"].to_numpy()[pick]
    monetary = result.features["monetary"].to_numpy()[pick]
    seg = result.segment_ids[pick]
    for segment in result.model.segments:
        mask = seg == segment.segment_id
        ax.scatter(recency[mask], monetary[mask], s=6, alpha=0.6, label=segment.name,
                   color=colors[segment.segment_id])  # fmt: skip
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("recency (days since last purchase)")
    ax.set_ylabel("monetary (net spend in window)")
    ax.set_title("Recency against monetary, coloured by segment")
    ax.legend(fontsize=7, markerscale=2)
    return _png(fig)


def _sizes(result: TrainResult) -> bytes:
    segments = result.model.segments
    fig, ax = plt.subplots(figsize=(6, 3.6))
    shares = [s.profile.share if s.profile else 0.0 for s in segments]
    revenue = [s.profile.revenue_share if s.profile else 0.0 for s in segments]
    yy = np.arange(len(segments))
    ax.barh(yy - 0.2, shares, 0.4, label="share of customers")
    ax.barh(yy + 0.2, revenue, 0.4, label="share of revenue")
    ax.set_yticks(yy, [f"{s.segment_id}: {s.name}" for s in segments], fontsize=8)
    ax.set_xlabel("share")
    ax.set_title("Segment sizes and revenue")
    ax.legend(fontsize=8)
    return _png(fig)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _predictive(model: SegmentModel) -> str:
    v = model.validation
    p = v.predictive
    if not p:
        return "<p>Not measured (no temporal holdout, or everyone or no one bought again).</p>"
    names = {str(s.segment_id): s.name for s in model.segments}
    churn = "".join(
        f"<tr><td class=l>{html.escape(names.get(k, k))}</td><td>{c:.1%}</td></tr>"
        for k, c in sorted(v.churn_by_segment.items(), key=lambda kv: kv[1])
    )
    kept = p["segment_auc"] - 0.5
    ceiling = max(1e-9, p["rfm_auc"] - 0.5)
    return f"""<p>Segments fitted {model.parameters.get("holdout_days")} days before the end,
applied to the {int(p["customers"]):,} customers known then, against what those customers
did in the last {model.parameters.get("holdout_days")} days ({p["purchase_rate"]:.1%} bought
again). Cross-validated:</p>
<table><tr><th class=l>predicts</th><th>segments</th><th>raw RFM (regression)</th>
<th>knowing nothing</th></tr>
<tr><td class=l>bought again (AUC)</td><td>{p["segment_auc"]:.3f}</td><td>{p["rfm_auc"]:.3f}</td>
<td>0.500</td></tr>
<tr><td class=l>log spend (R&sup2;)</td><td>{p["segment_spend_r2"]:.3f}</td>
<td>{p["rfm_spend_r2"]:.3f}</td><td>0.000</td></tr></table>
<p class=note>What this means: the segment label alone keeps {kept / ceiling:.0%} of the
purchase signal the raw features carry; an AUC of 0.5 would mean the labels say nothing
about who comes back.</p>
<table><tr><th class=l>segment</th><th>did not buy in the window (churn)</th></tr>{churn}</table>"""


def _robustness(model: SegmentModel) -> str:
    v = model.validation
    names = {str(s.segment_id): s.name for s in model.segments}
    sensitivity = "".join(
        f"<tr><td class=l>{html.escape(name)}</td><td>{share:.1%}</td></tr>"
        for name, share in v.sensitivity.items()
    )
    correlations = "".join(
        f"<tr><td class=l>{html.escape(pair.replace('~', ' / '))}</td><td>{r:+.2f}"
        f"{f' <b>(above {CORRELATION_WARNING})</b>' if abs(r) > CORRELATION_WARNING else ''}"
        "</td></tr>"
        for pair, r in v.feature_correlation.items()
    )
    unstable = ", ".join(html.escape(names.get(i, i)) for i in v.unstable_segments)
    cv = (
        f"<p>Cross-validation (5 folds of customers, refit on 4, assign the fifth): ARI "
        f"<b>{v.cv_ari_mean:.3f}</b> &plusmn; {v.cv_ari_std:.3f} against the full fit.</p>"
        if v.cv_ari_mean is not None
        else ""
    )
    verdict = (
        f"<p><b>Fragile:</b> {FRAGILE_NOISE:.0%} noise on spend moves more than "
        f"{FRAGILE_SHARE:.0%} of customers.</p>"
        if v.fragile
        else f"<p>Not fragile: {FRAGILE_NOISE:.0%} noise on spend moves at most "
        f"{FRAGILE_SHARE:.0%} of customers.</p>"
    )
    return f"""{cv}
<table><tr><th class=l>input change</th><th>customers who change segment</th></tr>
{sensitivity}</table>{verdict}
<p class=note>What this means: small errors in the data (a mis-keyed amount, a late event)
should not re-segment many customers; if they do, the boundaries are too fine to act on.</p>
<table><tr><th class=l>transformed features</th><th>correlation</th></tr>{correlations}</table>
<p class=note>Strongly correlated features count the same behaviour twice in the distance.</p>
<p>{
        f"Transitional segments (bootstrap Jaccard below {UNSTABLE_JACCARD} or holdout "
        f"retention below {UNSTABLE_RETENTION:.0%}): <b>"
        + unstable
        + "</b>: consider merging them."
        if unstable
        else "No transitional segments: every segment is reproduced by resampling and over time."
    }</p>"""


def _summary(model: SegmentModel) -> str:
    v = model.validation
    p = v.predictive
    stable = (
        f"bootstrap ARI {v.bootstrap_ari:.2f}"
        + (f", cross-validated ARI {v.cv_ari_mean:.2f}" if v.cv_ari_mean is not None else "")
        if v.bootstrap_ari is not None
        else "stability not measured"
    )
    predictive = (
        f"they predict who buys again at AUC {p['segment_auc']:.2f} (raw RFM: "
        f"{p['rfm_auc']:.2f}, a guess: 0.50)"
        if p
        else "predictive validity not measured"
    )
    warnings = []
    if v.fragile:
        warnings.append("fragile under 10% noise on spend")
    if v.unstable_segments:
        warnings.append(f"{len(v.unstable_segments)} transitional segment(s)")
    moved = sum(
        n for old, row in v.migration_from_previous.items() for new, n in row.items() if old != new
    )
    total = sum(n for row in v.migration_from_previous.values() for n in row.values())
    change = (
        f"Against v{model.parameters.get('previous_version')}: {moved:,} of {total:,} customers "
        f"({moved / max(1, total):.1%}) would change segment."
        if total
        else "First model: nothing to compare with."
    )
    return f"""<div class=summary><p><b>{len(model.segments)} segments</b> over
{model.n_customers:,} customers; {stable}; {predictive}.
{("<b>Warnings:</b> " + "; ".join(warnings) + ".") if warnings else "No warnings."}
{change}</p></div>"""


def _cards(model: SegmentModel) -> str:
    v = model.validation
    pareto_set = pareto(
        {s.segment_id: s.profile.revenue_share for s in model.segments if s.profile}
    )
    cards = []
    for segment in model.segments:
        p = segment.profile
        if p is None:
            continue
        churn = v.churn_by_segment.get(str(segment.segment_id))
        mix = ", ".join(f"{c} {share:.0%}" for c, share in
                        sorted(p.channel_mix.items(), key=lambda kv: -kv[1])) or "-"  # fmt: skip
        flags = []
        if segment.segment_id in pareto_set:
            flags.append("in the 80% of revenue")
        if str(segment.segment_id) in v.unstable_segments:
            flags.append("unstable: consider merging")
        cards.append(f"""<div class=card><h3>{html.escape(segment.name)}
<span class=note>{" &middot; ".join(flags)}</span></h3>
<p>{p.size:,} customers ({p.share:.1%}), {p.revenue_share:.1%} of revenue; median recency
{p.median["recency_days"]:.0f} days, frequency {p.median["frequency"]:.0f}, monetary
{p.median["monetary"]:,.2f}; AOV {p.average_order_value:,.2f}; refunds
{_share(p.refund_rate)} of purchases; channels {html.escape(mix)}; near a boundary
{_share(p.boundary_share)}; churn in the holdout window {_share(churn)}.</p>
<ul><li>What they value: {html.escape(p.values)}.</li>
<li>How they interact: {html.escape(p.interacts)}.</li>
<li>Lever: {html.escape(p.lever)}.</li>{_card_traits(p.traits)}</ul></div>""")
    return "".join(cards)


def _card_traits(traits: SegmentTraits | None) -> str:
    if traits is None:
        return ""
    value = (
        ""
        if traits.mean_expected_value is None
        else f", worth {traits.mean_expected_value:,.2f} on average"
    )
    return (
        f"<li>Next {traits.horizon_days} days: P(alive) {traits.mean_p_alive:.0%} on average, "
        f"{traits.mean_expected_purchases:.2f} expected purchases{value}; "
        f"{traits.high_risk:,} at high churn risk.</li>"
    )


def pvalue(p: float) -> str:
    """A p-value as the report prints it; one below the smallest double is ``< 1e-300``.

    >>> pvalue(0.0), pvalue(3.2e-12), pvalue(0.04)
    ('< 1e-300', '3.2e-12', '0.04')
    """
    return "< 1e-300" if p < 1e-300 else f"{p:.2g}"


def _algorithms(model: SegmentModel) -> str:
    v = model.validation
    if not v.algorithms:
        return ""
    rows = "".join(
        f"<tr><td class=l>{html.escape(name)}</td><td>{s['silhouette']:.3f}</td>"
        f"<td>{s['davies_bouldin']:.3f}</td><td>{s['stability']:.3f}</td></tr>"
        for name, s in v.algorithms.items()
    )
    return f"""<h3>Algorithm choice</h3>
<table><tr><th class=l>at k={len(model.segments)}</th><th>silhouette</th>
<th>Davies-Bouldin</th><th>stability (ARI)</th></tr>{rows}</table>
<p class=note>{html.escape(v.algorithm_choice)}.</p>"""


def _migration(model: SegmentModel) -> str:
    table = model.validation.migration_from_previous
    if not table:
        return ""
    new_ids = sorted({new for row in table.values() for new in row}, key=int)
    names = {str(s.segment_id): s.name for s in model.segments}
    head = "".join(f"<th>{html.escape(names.get(i, i))}</th>" for i in new_ids)
    rows = "".join(
        f"<tr><td class=l>segment {html.escape(old)}</td>"
        + "".join(f"<td>{table[old].get(i, 0):,}</td>" for i in new_ids)
        + "</tr>"
        for old in sorted(table, key=int)
    )
    return f"""<h3>What changed since the previous version</h3>
<table><tr><th class=l>previous model \\ this model</th>{head}</tr>{rows}</table>
<p class=note>Today's customers, by the segment the previous model and this one give
them (segment ids are matched across versions).</p>"""


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def holdout_counts(result: TrainResult, policy: HoldoutPolicy) -> dict[int, int]:
    """Training customers per segment id that the policy holds out."""
    counts: dict[int, int] = {s.segment_id: 0 for s in result.model.segments}
    ids = result.features["customer_id"].to_list()
    for customer, segment in zip(ids, result.segment_ids.tolist(), strict=True):
        if policy.is_holdout(str(customer), int(segment)):
            counts[int(segment)] += 1
    return counts


def _segment_rows(result: TrainResult, policy: HoldoutPolicy) -> str:
    model, v = result.model, result.model.validation
    held = holdout_counts(result, policy)
    rows = []
    for segment in model.segments:
        p = segment.profile
        assert p is not None  # noqa: S101 - the trainer always writes profiles
        jaccard = v.segment_jaccard.get(str(segment.segment_id))
        rows.append(
            f"<tr><td>{segment.segment_id}</td><td class=l><b>{html.escape(segment.name)}</b>"
            f"<br><span class=note>{html.escape(p.description)}</span></td>"
            f"<td>{p.size:,}</td><td>{p.share:.1%}</td><td>{p.revenue_share:.1%}</td>"
            f"<td>{p.average_order_value:,.2f}</td><td>{p.mean['recency_days']:.0f}</td>"
            f"<td>{p.mean['frequency']:.2f}</td><td>{p.mean['monetary']:,.2f}</td>"
            f"<td>{_fmt(jaccard, 2)}</td>"
            f"<td>{_share(p.boundary_share)}</td>"
            f"<td>{held[segment.segment_id]:,} "
            f"({policy.share_of(segment.segment_id):.0%})</td></tr>"
        )
    return f"""<table><tr><th>id</th><th class=l>segment</th><th>customers</th><th>share</th>
<th>revenue share</th><th>avg order value</th><th>mean recency (days)</th>
<th>mean frequency</th><th>mean monetary</th><th>stability (Jaccard)</th>
<th>near a boundary</th><th>holdout (share)</th></tr>
{"".join(rows)}</table>"""


def _trust(result: TrainResult) -> str:
    model, v = result.model, result.model.validation
    pvalues = "".join(
        f"<tr><td class=l>{html.escape(k)}</td><td>{html.escape(pvalue(p))}</td></tr>"
        for k, p in v.kpi_pvalues.items()
    )
    holdout = (
        f"<p>A model fitted {result.holdout.holdout_days} days earlier, applied to today's "
        f"customers, agrees with today's model at ARI <b>{result.holdout.ari:.3f}</b>; "
        f"{result.holdout.changed_share:.1%} of the {result.holdout.customers_then:,} customers "
        "known then have moved segment since.</p>"
        if result.holdout
        else "<p>Temporal holdout not computed (too little history).</p>"
    )
    return f"""<ul>
<li>Separation: silhouette <b>{_fmt(v.silhouette)}</b> (from -1 to 1; above 0.5 is clear
structure), Davies-Bouldin <b>{_fmt(v.davies_bouldin)}</b> (lower is better),
Calinski-Harabasz {_fmt(v.calinski_harabasz, 0)}.</li>
<li>Stability: refitting on {model.parameters.get("bootstrap_resamples")} bootstrap resamples
reproduces the segments at mean adjusted Rand index <b>{_fmt(v.bootstrap_ari)}</b>
(1 = identical); per-segment Jaccard above 0.75 means a segment is stable.</li>
<li>Edge cases: "near a boundary" is the share of a segment's customers whose nearest
centroid is less than 10% closer than the second nearest (confidence below 0.1);
their label is the least certain. Soft membership is a softmax of negative squared
distances at temperature <b>{_fmt(model.temperature)}</b>, fitted so the top score
matches how often bootstrap refits keep a customer in its segment (mean gap
{_fmt(model.membership.calibration_error if model.membership else None)}).</li>
<li>Holdout: the control group per segment under the configured share and salt
(<code>RESCORER_HOLDOUT_*</code>); the worker and replay flag the same customers.</li>
<li>Do the segments differ on business KPIs? Kruskal-Wallis p-values:</li></ul>
<table><tr><th class=l>measure</th><th>p-value</th></tr>{pvalues}</table>
<h3>Over time</h3>{holdout}"""


def render(
    result: TrainResult,
    rejections: Rejections,
    images: dict[str, bytes],
    holdout_policy: HoldoutPolicy | None = None,
) -> str:
    """The HTML page."""
    model = result.model
    quality = (
        f"<pre>{html.escape(rejections.summary())}</pre>"
        if rejections.rejected
        else f"<p>All {rejections.total_rows:,} input rows were valid.</p>"
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}"></figure>'
        for name, data in images.items()
    )
    definition = html.escape(model.features.definition)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Segment model v{model.version}</title><style>{_STYLE}</style>
<script>{_SELF_CHECK}</script></head><body>
<h1>Customer segments, model v{model.version}</h1>
<p>{model.n_customers:,} customers with a purchase by <b>{model.as_of:%Y-%m-%d %H:%M} UTC</b>,
from {model.n_events:,} events ({model.training_start:%Y-%m-%d} to
{model.training_end:%Y-%m-%d}); window {model.features.window_days} days;
{len(model.segments)} segments.</p>
<p class=note>{definition}</p>
{_summary(model)}
<h2>Segments</h2>{_segment_rows(result, holdout_policy or HoldoutPolicy())}
<h2>Action cards</h2><div class=grid>{_cards(model)}</div>
<h2>Can these segments be trusted?</h2>{_trust(result)}
<h2>Do the segments predict behaviour?</h2>{_predictive(model)}
<h2>What will customers do? The predictive model</h2>{traits_section(model)}
<h2>Are they robust?</h2>{_robustness(model)}{_algorithms(model)}{_migration(model)}
<h3>Data quality</h3>{quality}
{f"<h3>Notes</h3><ul>{notes}</ul>" if notes else ""}
<h2>Figures</h2><div class=grid>{figures}</div>
</body></html>
"""


def write_report(
    result: TrainResult,
    rejections: Rejections,
    directory: Path,
    holdout_policy: HoldoutPolicy | None = None,
) -> Path:
    """Write ``index.html`` and the PNG files into `directory`; return the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    images = plots(result) | traits_plots(result.model)
    for name, data in images.items():
        (directory / name).write_bytes(data)
    page = directory / "index.html"
    page.write_text(render(result, rejections, images, holdout_policy), encoding="utf-8")
    return page
