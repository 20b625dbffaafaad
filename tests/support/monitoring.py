"""The dashboards' and rules' PromQL, collected for the tests that check it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROMETHEUS = GRAFANA / "prometheus"
RULES = PROMETHEUS / "rules.yml"

# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!=)(?!\s*bool)")


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from."""

    where: str
    expr: str


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_queries() -> list[Query]:
    """Every target of every dashboard, with Grafana's variables filled in."""
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                queries.append(Query(f"{path.name}: {panel['title']}", expr))
    return queries


def rules() -> list[dict[str, Any]]:
    """Every rule of the rules file."""
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def as_bool(expr: str) -> str:
    """`expr` with each comparison outside label matchers and strings made a ``bool``
    one, so an alert expression returns its series (0 or 1) whether or not it fires."""
    out: list[str] = []
    depth = 0
    quote: str | None = None
    i = 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            out.append(ch)
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if depth == 0 and not quote:
            match = COMPARISON.match(expr, i)
            if match and ch in "=!<>":
                out.append(f"{match.group(1)} bool")
                i = match.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def rule_queries() -> list[Query]:
    """Recording rules by expression and by name; alerts with comparisons made ``bool``."""
    queries = []
    for rule in rules():
        if "record" in rule:
            queries.append(Query(f"rule {rule['record']}", rule["expr"]))
            queries.append(Query(f"recorded {rule['record']}", rule["record"]))
        else:
            queries.append(Query(f"alert {rule['alert']}", as_bool(rule["expr"])))
    return queries


def metric_names(expr: str) -> set[str]:
    """Names of worker metrics and recording rules an expression reads."""
    return set(re.findall(r"\brescorer[_:][a-z0-9_:]+", expr))
