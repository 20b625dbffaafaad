"""Create a plan's topics and ACL bindings on the broker (kafka-python admin client)."""

from __future__ import annotations

from collections.abc import Sequence

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import KafkaError

from rescorer.acl_plan import Grant
from rescorer.common import kafka_failure
from rescorer.errors import UsageError
from streams.settings import WorkerSettings

_RESOURCE = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
}
_PATTERN = {"literal": ACLResourcePatternType.LITERAL, "prefixed": ACLResourcePatternType.PREFIXED}


def binding(grant: Grant) -> ACL:
    """The kafka-python ACL for one grant (any host)."""
    return ACL(
        principal=grant.principal,
        host="*",
        operation=ACLOperation[grant.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            _RESOURCE[grant.resource], grant.name, _PATTERN[grant.pattern]
        ),
    )


def apply_grants(settings: WorkerSettings, grants: Sequence[Grant]) -> int:
    """Create the deployment's topics, then every binding; print what was done.

    Creating a binding that exists already succeeds, so ``apply`` can be run
    again after a plan grows.
    """
    from streams.topics import TopicMismatch, ensure_topics

    try:
        ensure_topics(settings)
    except TopicMismatch as exc:
        raise UsageError(str(exc)) from exc
    try:
        admin = KafkaAdminClient(**settings.kafka_python_config())
    except KafkaError as exc:
        raise kafka_failure(settings, exc) from exc
    try:
        outcome = admin.create_acls([binding(grant) for grant in grants])
    finally:
        admin.close()
    failed = outcome.get("failed", [])
    if failed:
        acl, error = failed[0]
        what = f"creating the ACL {acl.principal} {acl.operation.name} {acl.resource_pattern}"
        if isinstance(error, type) and issubclass(error, KafkaError):
            raise error(what)
        raise KafkaError(f"{what}: {error}")
    for grant in grants:
        print(f"granted {grant}")
    return 0
