"""Least-privilege Kafka ACLs for each principal of a deployment (pure data).

Four kinds of client touch segment data; each gets only what it uses:

- the **worker** reads events and models, is a member of its consumer group
  (the app id), writes changes, band changes, assignments, dead letters and retrain
  requests, and owns Faust's internal topics (changelogs, the assignor's
  leader topic), all named ``<app id>-...``: a prefixed resource; in
  exactly-once mode also the transactional ids of its steps,
  ``<app id>-step-<partition>`` (a prefixed ``TransactionalId`` resource);
- the **trainer** (``rescorer train --from-kafka``, ``rescorer retrain``) reads
  events and retrain requests (offsets committed under its group) and writes
  the models topic;
- **readers** (downstream services) read ``segment-changes`` and
  ``risk-band-changes`` and, only when
  granted, ``customer-segments``, in consumer groups under one prefix;
- **ops** read ``/metrics`` over HTTP and need no Kafka access at all.

Topics are created by the admin (``rescorer acl apply`` does it), so no
client needs ``CREATE`` except for what it owns: the worker its internal
topics. Kafka implies ``DESCRIBE`` from ``READ`` and ``WRITE``.

>>> from schemas.settings import TopicNames
>>> grants = plan(TopicNames(), "segment-rescorer", worker="User:w", trainer="User:t",
...               readers=["User:r"])
>>> print(grants[0])
User:w  READ     topic customer-events
>>> sorted({g.principal for g in grants})
['User:r', 'User:t', 'User:w']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from schemas.retrain import DEFAULT_RETRAIN_GROUP
from schemas.settings import TopicNames, transactional_id_prefix

ResourceType = Literal["topic", "group", "transactional_id"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["READ", "WRITE", "CREATE", "DESCRIBE"]

DEFAULT_READER_GROUP_PREFIX = "segment-readers"

_PRINCIPAL = re.compile(r"^User:[^\s*]+$")


class PrincipalError(ValueError):
    """A principal string the authorizer would not match as meant."""


def check_principal(text: str, flag: str) -> str:
    """`text` if it names one user (``User:name``); else `PrincipalError` naming `flag`."""
    if not _PRINCIPAL.match(text):
        raise PrincipalError(
            f"{flag} {text!r} is not a principal of the form User:<name> (no spaces, no wildcard)"
        )
    return text


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW binding: `principal` may `operation` on a resource."""

    principal: str
    operation: Operation
    resource: ResourceType
    name: str
    pattern: Pattern = "literal"

    def __str__(self) -> str:
        where = f"{self.resource} {self.name}" + ("*" if self.pattern == "prefixed" else "")
        return f"{self.principal}  {self.operation:<8} {where}"


def _grants(
    principal: str, operation: Operation, resource: ResourceType, names: Iterable[str],
    pattern: Pattern = "literal",
) -> list[Grant]:  # fmt: skip
    return [Grant(principal, operation, resource, name, pattern) for name in names]


def plan(
    topics: TopicNames,
    app_id: str,
    *,
    worker: str | None = None,
    trainer: str | None = None,
    readers: Sequence[str] = (),
    readers_see_assignments: bool = False,
    reader_group_prefix: str = DEFAULT_READER_GROUP_PREFIX,
    trainer_group: str = DEFAULT_RETRAIN_GROUP,
    exactly_once: bool = False,
) -> list[Grant]:
    """The bindings for the principals given (each one's least privilege); `exactly_once`:
    the worker runs with ``RESCORER_PROCESSING_GUARANTEE=exactly_once``."""
    grants: list[Grant] = []
    if worker is not None:
        grants += _grants(worker, "READ", "topic", [topics.events, topics.models, topics.feedback])
        grants += _grants(
            worker, "WRITE", "topic",
            [topics.changes, topics.band_changes, topics.assignments, topics.dead_letters,
             topics.retrain_requests, topics.feedback_latest],
        )  # fmt: skip
        grants += _grants(worker, "READ", "group", [app_id])
        internal = f"{app_id}-"  # Faust: <app id>-<table>-changelog, <app id>-__assignor-__leader
        for operation in ("READ", "WRITE", "CREATE"):
            grants += _grants(worker, operation, "topic", [internal], "prefixed")
        if exactly_once:  # InitProducerId, AddPartitionsToTxn, EndTxn: WRITE on the id
            steps = transactional_id_prefix(app_id)
            grants += _grants(worker, "WRITE", "transactional_id", [steps], "prefixed")
    if trainer is not None:
        grants += _grants(
            trainer, "READ", "topic",
            [topics.events, topics.retrain_requests, topics.feedback_latest],
        )  # fmt: skip
        grants += _grants(trainer, "READ", "group", [trainer_group])
        grants += _grants(trainer, "WRITE", "topic", [topics.models])
    for reader in readers:
        seen = [topics.changes, topics.band_changes]
        seen += [topics.assignments] if readers_see_assignments else []
        grants += _grants(reader, "READ", "topic", seen)
        grants += _grants(reader, "READ", "group", [reader_group_prefix], "prefixed")
    return grants
