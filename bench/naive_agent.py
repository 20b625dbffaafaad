"""The naive baseline for bench/stream_throughput.py: a textbook Faust agent.

One event at a time: decode with pydantic, a table lookup, update running RFM
(no window, no de-duplication), River ``predict_one`` on centroids seeded from
the model, write the table, send a change when the segment differs.
With ``NAIVE_MODE=empty`` the agent does nothing at all: that measures what
Faust's per-message pipeline alone can deliver on the machine.
Run as ``python bench/naive_agent.py worker`` with the ``NAIVE_*`` variables.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import faust
from river.cluster import KMeans

from schemas.events import CustomerEvent, EventType
from schemas.model import SegmentModel

MODEL = SegmentModel.model_validate_json(Path(os.environ["NAIVE_MODEL"]).read_text())
NAMES = ("recency_days", "frequency", "monetary")

app = faust.App(
    os.environ["NAIVE_APP_ID"],
    broker=f"kafka://{os.environ['NAIVE_BOOTSTRAP']}",
    store="memory://",
    topic_partitions=int(os.environ["NAIVE_PARTITIONS"]),
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    table_standby_replicas=0,
    broker_commit_interval=1.0,
    broker_max_poll_records=5000,
    stream_buffer_maxsize=16384,
)
events = app.topic(
    os.environ["NAIVE_EVENTS"], key_type=bytes, value_type=bytes,
    key_serializer="raw", value_serializer="raw",
)  # fmt: skip
changes = app.topic(os.environ["NAIVE_CHANGES"], value_serializer="raw", key_serializer="raw")
table = app.Table("naive", default=dict, partitions=int(os.environ["NAIVE_PARTITIONS"]))
kmeans = KMeans(n_clusters=len(MODEL.segments), halflife=0.0, seed=0)
for i, segment in enumerate(MODEL.segments):
    kmeans.centers[i].clear()
    kmeans.centers[i].update(zip(NAMES, segment.centroid, strict=True))
mean, scale = MODEL.scaler.mean, MODEL.scaler.scale


EMPTY = os.environ.get("NAIVE_MODE") == "empty"


@app.agent(events)
async def naive(stream: faust.StreamT[bytes]) -> None:
    async for value in stream:
        if EMPTY:  # the Faust ceiling: deliver each event to an agent, do nothing
            continue
        event = CustomerEvent.model_validate_json(value)
        state = dict(table[event.customer_id])
        if event.type is EventType.PURCHASE:
            state["f"] = state.get("f", 0) + 1
            state["m"] = state.get("m", 0.0) + (event.amount or 0.0)
            state["last"] = max(state.get("last", 0.0), event.occurred_at.timestamp())
        elif event.type is EventType.REFUND:
            state["m"] = state.get("m", 0.0) - (event.amount or 0.0)
        if "last" in state:
            recency = max(0.0, (event.occurred_at.timestamp() - state["last"]) / 86400)
            raw = (recency, math.log1p(state["f"]), math.log1p(max(state["m"], 0.0)))
            x = {n: (v - mu) / s for n, v, mu, s in zip(NAMES, raw, mean, scale, strict=True)}
            segment = kmeans.predict_one(x)
            if segment != state.get("seg"):
                state["seg"] = segment
                await changes.send(
                    key=event.customer_id.encode(),
                    value=json.dumps(
                        {"customer_id": event.customer_id, "segment": segment}
                    ).encode(),
                )
        table[event.customer_id] = state


if __name__ == "__main__":
    app.main()
