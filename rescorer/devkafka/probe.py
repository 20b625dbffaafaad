"""Ask a Kafka cluster whether it serves requests."""

from __future__ import annotations

import contextlib
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError


def broker_responds(bootstrap_servers: str, timeout_ms: int = 3000, **client_config: Any) -> bool:
    """Whether a metadata request to the cluster succeeds within `timeout_ms`."""
    admin = None
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers.split(","),
            request_timeout_ms=timeout_ms,
            client_id="rescorer-probe",
            **client_config,
        )
        admin.describe_cluster()
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()
    return True
