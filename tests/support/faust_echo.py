"""A minimal Faust app for the integration tier: validate events, forward them.

Run as ``faust -A tests.support.faust_echo worker``; the topics and the
broker come from the environment the test sets.
"""

from __future__ import annotations

import os

import faust

from schemas import CustomerEvent
from schemas.settings import RescorerSettings
from streams.kafka_clients import faust_broker_settings

settings = RescorerSettings()
app = faust.App(
    os.environ["ECHO_APP_ID"],
    store="memory://",
    web_enabled=False,
    topic_partitions=3,
    datadir=os.environ["ECHO_DATADIR"],
    **faust_broker_settings(settings),
)
source = app.topic(
    os.environ["ECHO_IN"],
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)
sink = app.topic(os.environ["ECHO_OUT"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def echo(stream: faust.StreamT[bytes]) -> None:
    """Parse each value as a CustomerEvent and forward it, keyed by customer."""
    async for key, value in stream.items():
        event = CustomerEvent.model_validate_json(value)
        await sink.send(key=key, value=event.model_dump_json().encode())
