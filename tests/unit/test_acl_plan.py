"""The ACL plan: least privilege per principal, refused principal strings."""

from __future__ import annotations

import pytest

from rescorer.acl_plan import Grant, PrincipalError, check_principal, plan
from rescorer.cli import main
from schemas.settings import TopicNames
from streams.transactions import transactional_id

TOPICS = TopicNames()


def grants_of(grants: list[Grant], principal: str) -> set[tuple[str, str, str, str]]:
    return {
        (g.operation, g.resource, g.name, g.pattern) for g in grants if g.principal == principal
    }


def test_the_worker_gets_its_topics_group_and_internal_prefix() -> None:
    worker = grants_of(plan(TOPICS, "app", worker="User:w"), "User:w")
    assert worker == {
        ("READ", "topic", "customer-events", "literal"),
        ("READ", "topic", "segment-models", "literal"),
        ("READ", "topic", "segment-feedback", "literal"),
        ("WRITE", "topic", "segment-feedback-latest", "literal"),
        ("WRITE", "topic", "segment-changes", "literal"),
        ("WRITE", "topic", "risk-band-changes", "literal"),
        ("WRITE", "topic", "customer-segments", "literal"),
        ("WRITE", "topic", "customer-events-dlq", "literal"),
        ("WRITE", "topic", "retrain-requests", "literal"),
        ("READ", "group", "app", "literal"),
        ("READ", "topic", "app-", "prefixed"),
        ("WRITE", "topic", "app-", "prefixed"),
        ("CREATE", "topic", "app-", "prefixed"),
    }


def test_exactly_once_adds_the_workers_step_transactional_ids_and_nothing_else() -> None:
    at_least_once = grants_of(plan(TOPICS, "app", worker="User:w"), "User:w")
    exactly_once = grants_of(plan(TOPICS, "app", worker="User:w", exactly_once=True), "User:w")
    assert exactly_once - at_least_once == {("WRITE", "transactional_id", "app-step-", "prefixed")}
    assert transactional_id("app", 7).startswith("app-step-")
    granted = [g for g in plan(TOPICS, "app", worker="User:w", exactly_once=True)
               if g.resource == "transactional_id"]  # fmt: skip
    assert [str(g) for g in granted] == ["User:w  WRITE    transactional_id app-step-*"]


def test_the_trainer_reads_events_and_requests_and_writes_models_only() -> None:
    trainer = grants_of(plan(TOPICS, "app", trainer="User:t"), "User:t")
    assert {g[:3] for g in trainer if g[0] == "WRITE"} == {("WRITE", "topic", "segment-models")}
    assert ("READ", "topic", "customer-events", "literal") in trainer
    assert ("READ", "group", "segment-rescorer-retrain", "literal") in trainer


def test_readers_read_changes_band_changes_and_assignments_only_when_granted() -> None:
    default = grants_of(plan(TOPICS, "app", readers=["User:r"]), "User:r")
    assert default == {
        ("READ", "topic", "segment-changes", "literal"),
        ("READ", "topic", "risk-band-changes", "literal"),
        ("READ", "group", "segment-readers", "prefixed"),
    }
    wider = grants_of(
        plan(TOPICS, "app", readers=["User:r"], readers_see_assignments=True), "User:r"
    )
    assert ("READ", "topic", "customer-segments", "literal") in wider
    assert not any(g[0] in {"WRITE", "CREATE"} for g in wider)


def test_names_follow_the_configured_topics() -> None:
    renamed = TopicNames(changes="prod.changes")
    assert ("READ", "topic", "prod.changes", "literal") in grants_of(
        plan(renamed, "app", readers=["User:r"]), "User:r"
    )


@pytest.mark.parametrize("bad", ["worker", "User:", "User:*", "User:two words", "Group:x", ""])
def test_bad_principals_are_refused(bad: str) -> None:
    with pytest.raises(PrincipalError, match="--flag"):
        check_principal(bad, "--flag")


def test_the_cli_prints_the_plan_and_refuses_bad_input_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["acl", "plan", "--principal-reader", "User:crm"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "User:crm  READ     topic segment-changes",
        "User:crm  READ     topic risk-band-changes",
        "User:crm  READ     group segment-readers*",
    ]
    assert main(["acl", "plan", "--principal-worker", "User:*"]) == 2
    assert main(["acl", "plan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("rescorer acl: error:") for line in err)
