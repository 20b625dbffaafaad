"""A self-contained HTML report (PNG plots embedded) that explains the segments."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from offline.event_validation import Rejections
from offline.trainer import TrainResult
from schemas.segments import FEATURE_NAMES
from scoring.holdout import HoldoutPolicy

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%}
.note{color:#555;font-size:.92em}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
"""


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plots(result: TrainResult) -> dict[str, bytes]:
    """The report's figures as PNG bytes, by file name."""
    model = result.model
    segments = model.segments
    names = [f"{s.segment_id}: {s.name}" for s in segments]
    colors = dict(zip([s.segment_id for s in segments], _colors(len(segments)), strict=True))
    out: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ks = [c.k for c in result.candidates]
    ax.plot(ks, [c.silhouette for c in result.candidates], "o-", label="silhouette (higher=better)")
    ax.plot(
        ks,
        [c.davies_bouldin for c in result.candidates],
        "s--",
        label="Davies-Bouldin (lower=better)",
    )
    ax.axvline(int(model.parameters["k"] or 0), color="grey", linestyle=":", label="chosen k")
    ax.set_xlabel("number of segments k")
    ax.set_title("Choosing k")
    ax.legend(fontsize=8)
    out["k_selection.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ids = result.segment_ids[result.sample_index]
    values = result.internal.silhouette_values
    y = 0
    for segment in segments:
        mine = np.sort(values[ids == segment.segment_id])
        ax.fill_betweenx(np.arange(y, y + len(mine)), 0, mine, color=colors[segment.segment_id])
        ax.text(-0.05, y + len(mine) / 2, segment.name, ha="right", va="center", fontsize=7)
        y += len(mine) + 10
    ax.axvline(result.internal.silhouette, color="red", linestyle="--", label="mean")
    ax.set_yticks([])
    ax.set_xlabel("silhouette value")
    ax.set_title("Silhouette by segment (sample)")
    ax.legend(fontsize=8)
    out["silhouette.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / max(1, len(segments))
    x = np.arange(len(FEATURE_NAMES))
    for i, segment in enumerate(segments):
        z = [segment.profile.zscores[f] if segment.profile else 0.0 for f in FEATURE_NAMES]
        ax.bar(x + i * width, z, width, label=names[i], color=colors[segment.segment_id])
    ax.set_xticks(x + width * (len(segments) - 1) / 2, ["recency (days)", "frequency", "monetary"])
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("centroid, standard deviations")
    ax.set_title("Segment profiles: how each segment differs from the average")
    ax.legend(fontsize=7, ncol=2)
    out["profiles.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    rng = np.random.default_rng(0)
    n = result.features.height
    pick = rng.choice(n, size=min(n, 4000), replace=False)
    recency = result.features["recency_days"].to_numpy()[pick]
    monetary = result.features["monetary"].to_numpy()[pick]
    seg = result.segment_ids[pick]
    for segment in segments:
        mask = seg == segment.segment_id
        ax.scatter(
            recency[mask],
            monetary[mask],
            s=6,
            alpha=0.6,
            label=segment.name,
            color=colors[segment.segment_id],
        )
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("recency (days since last purchase)")
    ax.set_ylabel("monetary (net spend in window)")
    ax.set_title("Recency against monetary, coloured by segment")
    ax.legend(fontsize=7, markerscale=2)
    out["recency_monetary.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    shares = [s.profile.share if s.profile else 0.0 for s in segments]
    revenue = [s.profile.revenue_share if s.profile else 0.0 for s in segments]
    yy = np.arange(len(segments))
    ax.barh(yy - 0.2, shares, 0.4, label="share of customers")
    ax.barh(yy + 0.2, revenue, 0.4, label="share of revenue")
    ax.set_yticks(yy, names, fontsize=8)
    ax.set_xlabel("share")
    ax.set_title("Segment sizes and revenue")
    ax.legend(fontsize=8)
    out["sizes.png"] = _png(fig)
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


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


def render(
    result: TrainResult,
    rejections: Rejections,
    images: dict[str, bytes],
    holdout_policy: HoldoutPolicy | None = None,
) -> str:
    """The HTML page."""
    model, v = result.model, result.model.validation
    policy = holdout_policy or HoldoutPolicy()
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
    pvalues = "".join(
        f"<tr><td class=l>{html.escape(k)}</td><td>{p:.2g}</td></tr>"
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
<title>Segment model v{model.version}</title><style>{_STYLE}</style></head><body>
<h1>Customer segments, model v{model.version}</h1>
<p>{model.n_customers:,} customers with a purchase by <b>{model.as_of:%Y-%m-%d %H:%M} UTC</b>,
from {model.n_events:,} events ({model.training_start:%Y-%m-%d} to
{model.training_end:%Y-%m-%d}); window {model.features.window_days} days;
{len(model.segments)} segments.</p>
<p class=note>{definition}</p>
<h2>Segments</h2>
<table><tr><th>id</th><th class=l>segment</th><th>customers</th><th>share</th>
<th>revenue share</th><th>avg order value</th><th>mean recency (days)</th>
<th>mean frequency</th><th>mean monetary</th><th>stability (Jaccard)</th>
<th>near a boundary</th><th>holdout (share)</th></tr>
{"".join(rows)}</table>
<h2>Can these segments be trusted?</h2>
<ul>
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
<h3>Over time</h3>{holdout}
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
    images = plots(result)
    for name, data in images.items():
        (directory / name).write_bytes(data)
    page = directory / "index.html"
    page.write_text(render(result, rejections, images, holdout_policy), encoding="utf-8")
    return page
