"""The report's section on the predictive model: its parameters and how it held up."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np

from offline.plotting import png
from schemas.model import SegmentModel
from schemas.traits import PurchaseModel, TraitsCheck


def _parameters(traits: PurchaseModel) -> str:
    b, g = traits.bgnbd, traits.gamma_gamma
    spend = (
        f"Gamma-Gamma on {g.customers:,} repeat buyers: p = {g.p:.3f}, q = {g.q:.3f}, "
        f"v = {g.v:.2f}; correlation of repeat purchases and mean spend "
        f"r = {g.frequency_spend_correlation:.2f} (the model assumes about 0)."
        if g is not None
        else "Gamma-Gamma not fitted: fewer than two customers bought again."
    )
    return f"""<p>BG/NBD over {b.customers:,} customers' whole purchase history (a day's purchases
count once; time in days): r = {b.r:.3f}, alpha = {b.alpha:.2f} days ({b.alpha / 7:.3f} weeks),
a = {b.a:.3f}, b = {b.b:.3f}, fitted on {b.groups:,} distinct (x, t<sub>x</sub>, T).
{html.escape(spend)}</p>"""


def _check(check: TraitsCheck, segment_auc: float | None) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{n:,}</td><td>{actual:.3f}</td>"
        f"<td>{predicted:.3f}</td></tr>"
        for label, (actual, predicted, n) in check.by_calibration_purchases.items()
    )
    auc = "-" if check.expected_purchases_auc is None else f"{check.expected_purchases_auc:.3f}"
    beside = "" if segment_auc is None else f" (the segments: {segment_auc:.3f})"
    return f"""<p>Refitted on the history up to {check.holdout_days} days before the end and
applied to the {check.customers:,} customers known then: they made
<b>{check.actual_repeat_days:,}</b> repeat purchase days in the holdout, the model expected
<b>{check.predicted_repeat_days:,.0f}</b>. Expected purchases rank who bought again at AUC
<b>{auc}</b>{beside}.</p>
<table><tr><th>repeat purchase days before</th><th>customers</th>
<th>actual, holdout (mean)</th><th>predicted (mean)</th></tr>{rows}</table>
<p class=note>Fader, Hardie &amp; Lee's conditional expectations: a model that tracks the
actual column from 0 to 7+ repeat purchases forecasts both light and heavy buyers.</p>"""


def traits_section(model: SegmentModel) -> str:
    """The HTML section (an explanation when the artifact carries no predictive model)."""
    traits = model.traits
    if traits is None:
        return "<p>No predictive model: the likelihood had no maximum on this history.</p>"
    segment_auc = model.validation.predictive.get("segment_auc")
    check = (
        _check(traits.check, segment_auc)
        if traits.check is not None
        else "<p>Not checked against a holdout (too little history).</p>"
    )
    limits = """<p class=note>What this means, and its limits: BG/NBD assumes customers buy
again at their own steady rate until they silently drop out, and can only drop out right
after a purchase. A customer who never bought again has had no chance to drop out and is
"alive" with probability 1; such customers' low expected purchases come from a low rate, so
read P(alive) together with expected purchases. Gamma-Gamma gives a customer without a repeat
purchase the population's mean spend.</p>"""
    return _parameters(traits) + check + limits


def traits_plots(model: SegmentModel) -> dict[str, bytes]:
    """The conditional-expectations chart, when the model was checked."""
    if model.traits is None or model.traits.check is None:
        return {}
    rows = model.traits.check.by_calibration_purchases
    labels = list(rows)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(x, [rows[k][0] for k in labels], "o-", label="actual")
    ax.plot(x, [rows[k][1] for k in labels], "s--", label="BG/NBD")
    ax.set_xticks(x, labels)
    ax.set_xlabel("repeat purchase days in the calibration period")
    ax.set_ylabel("repeat purchase days in the holdout")
    ax.set_title("Conditional expectations (holdout)")
    ax.legend(fontsize=8)
    return {"traits_conditional.png": png(fig)}
