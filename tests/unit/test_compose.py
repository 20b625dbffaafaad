"""docker-compose.yml cannot run here (no Docker engine); check what it refers to."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from rescorer.cli import build_parser
from tests.support.monitoring import PROMETHEUS, ROOT

COMPOSE = ROOT / "docker-compose.yml"


def services() -> dict[str, dict[str, Any]]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data["services"]


def rescorer_commands(service: dict[str, Any]) -> list[list[str]]:
    """Every ``rescorer ...`` invocation of a service's command, as argv."""
    command = service.get("command", [])
    text = command[-1] if command[:2] == ["sh", "-c"] else shlex.join(command)
    found = []
    for part in re.split(r"&&|;|\|\|", text):
        words = shlex.split(part.replace("\n", " "))
        while words and words[0] in {"while", "true", "do", "done", "sleep"}:
            words = words[1:]
        if words and words[0] == "rescorer":
            found.append(words[1:])
    return found


def test_the_stack_has_every_part_the_issue_names() -> None:
    names = set(services())
    assert {"kafka", "worker", "simulator", "retrain", "prometheus", "grafana"} <= names
    assert services()["simulator"]["profiles"] == ["simulator"]


def test_every_bind_mount_and_build_context_exists() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"
        if "build" in service:
            context = ROOT / service["build"]
            assert (context / "Dockerfile").is_file(), name


def test_the_dockerfile_copies_only_what_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


@pytest.mark.parametrize("name", ["worker", "simulator", "retrain"])
def test_every_rescorer_command_parses(name: str) -> None:
    commands = rescorer_commands(services()[name])
    assert commands, name
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)  # exits 2 on an unknown flag
        assert callable(args.handler)


def test_prometheus_scrapes_the_worker_service_under_the_dashboards_job_name() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "segment-rescorer"  # what the dashboards and alerts select
    (dns,) = job["dns_sd_configs"]
    assert dns["names"] == ["worker"] and "worker" in services()
    worker_env = services()["worker"]["environment"]
    assert str(dns["port"]) == str(worker_env["RESCORER_METRICS_PORT"])
    mounted = {v.split(":")[0] for v in services()["prometheus"]["volumes"]}
    assert f"./{PROMETHEUS.relative_to(ROOT)}" in mounted


def test_grafana_mounts_the_provisioning_and_the_dashboards_where_they_point() -> None:
    volumes = dict(v.split(":")[:2] for v in services()["grafana"]["volumes"])
    assert volumes["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/segment-rescorer.yml").read_text()
    )
    assert volumes["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]
