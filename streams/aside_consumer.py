"""Faust's consumer, with some topics kept subscribed but never fetched.

The events topic stays in Faust's subscription: that is what makes the
consumer group assign its partitions, co-partitioned with the tables'
changelogs, and move them between workers. Faust never fetches it, though:
its partitions are paused in the underlying aiokafka consumer the moment
they are assigned (in the consumer's own thread, before any fetch), and left
out of the partitions Faust resumes after recovery. `streams.batch_reader`
reads them instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.faust_internals import shorten_fetch_wait


def aside_consumer(topics: Iterable[str]) -> type[faust_aiokafka.Consumer]:
    """A Faust aiokafka consumer class that leaves `topics` to someone else."""
    aside = frozenset(topics)

    class AsideThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            return shorten_fetch_wait(super()._create_worker_consumer(transport))

        async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
            paused = [TopicPartition(t.topic, t.partition) for t in assigned if t.topic in aside]
            if paused:
                self._ensure_consumer().pause(*paused)
            await super().on_partitions_assigned(assigned, generation_id)

    class AsideConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return AsideThread(self, loop=self.loop, beacon=self.beacon)

        def _set_active_tps(self, tps: set[TP]) -> set[TP]:
            active: set[TP] = super()._set_active_tps(tps)
            active.difference_update({tp for tp in active if tp.topic in aside})
            return active

        def resume_partitions(self, tps: Iterable[TP]) -> None:
            super().resume_partitions({tp for tp in tps if tp.topic not in aside})

        def on_buffer_drop(self, tp: TP) -> None:
            if tp.topic not in aside:
                super().on_buffer_drop(tp)

    return AsideConsumer
