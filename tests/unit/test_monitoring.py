"""Dashboards, alert rules and the Prometheus config agree with the worker's metrics."""

from __future__ import annotations

import json
import subprocess

import yaml

from streams.metrics import WorkerMetrics
from tests.support.monitoring import (
    DASHBOARDS,
    GRAFANA,
    PROMETHEUS,
    as_bool,
    dashboard_queries,
    metric_names,
    panels,
    rule_queries,
    rules,
)


def exported_names() -> set[str]:
    names = set()
    for family in WorkerMetrics().registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":  # labelled counters have no samples until used
            names.add(f"{family.name}_total")
    for suffix in ("_bucket", "_sum", "_count"):  # histograms without observations yet
        names.update(f"{n}{suffix}" for n in list(names) if n.endswith("_seconds"))
    return names


def test_every_query_reads_a_metric_the_worker_exports_or_a_rule_records() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = exported_names() | recorded
    unknown = {
        (query.where, name)
        for query in dashboard_queries() + rule_queries()
        for name in metric_names(query.expr)
        if name not in known
    }
    assert not unknown


def test_every_panel_queries_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    provider = yaml.safe_load(
        (GRAFANA / "provisioning/dashboards/segment-rescorer.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_dashboard_covers_what_ops_asked_for() -> None:
    queries = " ".join(q.expr for q in dashboard_queries())
    for metric in (
        "rescorer_events_consumed_total", "rescorer_events_rejected_total",
        "rescorer_dead_letters_total", "rescorer_segment_population",
        "rescorer_segment_changes_total", "rescorer:segment_volatility:ratio1h",
        "rescorer_feature_psi", "rescorer_centroid_drift", "rescorer_event_latency_seconds_bucket",
        "rescorer_model_version", "rescorer_retrain_requests_total",
    ):  # fmt: skip
        assert metric in queries, metric


def test_alert_comparisons_become_bool_outside_label_matchers() -> None:
    expr = 'max by (p) (a{x!="y", z=~"a>b"}) > 0 and on (p) b == 0'
    assert as_bool(expr) == 'max by (p) (a{x!="y", z=~"a>b"}) > bool 0 and on (p) b == bool 0'
    assert as_bool("a >= bool 1") == "a >= bool 1"


def test_promtool_accepts_the_config_and_rules_and_their_unit_tests_pass(
    prometheus_tools: dict[str, str],
) -> None:
    promtool = prometheus_tools["promtool"]
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "rules.yml"],
        ["test", "rules", "rules.test.yml"],
    ):
        done = subprocess.run(
            [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
