"""The lookup API: a customer's segment and history, the segments' live populations.

Served by Faust's web server (its own port; metrics stay on theirs):

- ``GET /customers/{id}``: the current assignment (a `SegmentAssignment`, with
  membership, confidence and holdout against the owner's online centroids);
  404 when the customer has no segment, 400 for an id the contract refuses.
- ``GET /customers/{id}/history?limit=N``: the latest segment changes the
  customer's record keeps (at most `HISTORY_LIMIT`, newest first).
- ``GET /segments``: the active model's segments with their populations and
  holdout populations summed over every worker of the group.

A customer's record lives with the partition of the events topic its id hashes
to, so any worker answers: one that does not own the partition forwards the
request to the one that does (Faust's router, by the events topic's key).
Every endpoint is read-only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import faust
from faust.exceptions import SameNode
from faust.web import Request, Response, View

from schemas._base import ID_MAX_LENGTH
from scoring.customer_record import HISTORY_LIMIT, CustomerRecord, from_epoch_micros

if TYPE_CHECKING:
    from streams.metrics import WorkerMetrics
    from streams.ownership import Ownership
    from streams.state.tables import StateTables
    from streams.worker_state import WorkerState

log = logging.getLogger(__name__)
LOCAL_SEGMENTS = "/segments/local"


def bad_id(customer_id: str) -> str | None:
    """Why `customer_id` cannot name a customer, or None."""
    if not customer_id.strip():
        return "customer id is empty"
    if len(customer_id) > ID_MAX_LENGTH:
        return f"customer id is longer than {ID_MAX_LENGTH} characters"
    return None


def history_limit(text: str | None) -> int | str:
    """The ``limit`` query parameter as a count, or why it is refused."""
    if text is None:
        return HISTORY_LIMIT
    try:
        limit = int(text)
    except ValueError:
        return f"limit {text!r} is not a whole number"
    if not 1 <= limit <= HISTORY_LIMIT:
        return f"limit must be between 1 and {HISTORY_LIMIT} (the history kept per customer)"
    return limit


def group_populations(
    answers: Sequence[Mapping[str, Any] | None],
) -> tuple[dict[str, int], dict[str, int], set[int]]:
    """The group's populations and holdout populations per segment id, and the partitions
    reporting, from every worker's ``/segments/local`` answer (None: it did not answer).

    >>> group_populations([{"partitions": [0], "population": {"1": 2}, "holdout": {}},
    ...                    None, {"partitions": [1], "population": {"1": 3}, "holdout": {"1": 1}}])
    ({'1': 5}, {'1': 1}, {0, 1})
    """
    population: dict[str, int] = {}
    held: dict[str, int] = {}
    partitions: set[int] = set()
    for answer in answers:
        if answer is None:
            continue
        partitions.update(answer["partitions"])
        for key, n in answer["population"].items():
            population[key] = population.get(key, 0) + int(n)
        for key, n in answer["holdout"].items():
            held[key] = held.get(key, 0) + int(n)
    return population, held, partitions


class Lookup:
    """The views, bound to the worker's tables, state and metrics."""

    def __init__(
        self,
        app: faust.App,
        events: faust.TopicT,
        tables: StateTables,
        ownership: Ownership,
        state: WorkerState,
        metrics: WorkerMetrics,
    ) -> None:
        self.app = app
        self.events = events
        self.tables = tables
        self.ownership = ownership
        self.state = state
        self.metrics = metrics
        self._register()

    def _register(self) -> None:
        app, lookup = self.app, self

        @app.page("/customers/{customer_id}", name="customer")
        class Customer(View):
            async def get(self, request: Request, customer_id: str) -> Response:
                return await lookup.routed(self, request, customer_id, lookup.customer)

        @app.page("/customers/{customer_id}/history", name="customer_history")
        class History(View):
            async def get(self, request: Request, customer_id: str) -> Response:
                return await lookup.routed(self, request, customer_id, lookup.history)

        @app.page("/segments", name="segments")
        class Segments(View):
            async def get(self, request: Request) -> Response:
                return await lookup.segments(self)

        @app.page(LOCAL_SEGMENTS, name="segments_local")
        class LocalSegments(View):
            async def get(self, request: Request) -> Response:
                return self.json(lookup.local_populations())

        del Customer, History, Segments, LocalSegments

    async def routed(
        self,
        view: View,
        request: Request,
        customer_id: str,
        answer: Callable[[View, Request, str], Response],
    ) -> Response:
        """Answer here if this worker owns the customer's partition, else forward."""
        problem = bad_id(customer_id)
        if problem is not None:
            return view.error(400, problem)
        try:
            return await self.app.router.route_topic_req(
                self.events, customer_id, view.web, request
            )
        except SameNode:
            return answer(view, request, customer_id)
        except Exception as exc:
            log.warning("lookup of %r could not be routed: %s", customer_id, exc)
            return view.error(503, "the customer's partition has no reachable owner right now")

    def _record(self, view: View, customer_id: str) -> CustomerRecord | Response:
        rescorer = self.state.rescorer
        if rescorer is None:
            return view.error(503, "no model is loaded yet")
        owned = self.ownership.owned
        record = self.tables.find_record(customer_id, owned)
        if record is not None and record.partition not in owned:
            return view.error(503, "the customer's partition is being handed over")
        if record is None or record.segment_id is None:
            return view.error(404, "unknown customer", customer_id=customer_id)
        return record

    def customer(self, view: View, request: Request, customer_id: str) -> Response:
        """The current assignment of a customer this worker owns."""
        record = self._record(view, customer_id)
        if not isinstance(record, CustomerRecord):
            return record
        rescorer = self.state.rescorer
        assert rescorer is not None  # noqa: S101 - checked by _record
        (assignment,) = rescorer.current_assignments(record.partition, [(customer_id, record)])
        return view.json(assignment.model_dump(mode="json"))

    def history(self, view: View, request: Request, customer_id: str) -> Response:
        """The latest segment changes of a customer this worker owns, newest first."""
        limit = history_limit(request.query.get("limit"))
        if isinstance(limit, str):
            return view.error(400, limit)
        record = self._record(view, customer_id)
        if not isinstance(record, CustomerRecord):
            return record
        rescorer = self.state.rescorer
        assert rescorer is not None  # noqa: S101
        names = rescorer.segment_name
        moves = list(reversed(record.history))[:limit]
        return view.json(
            {
                "customer_id": customer_id,
                "kept": HISTORY_LIMIT,
                "changes": [
                    {
                        "as_of": from_epoch_micros(move.as_of * 1_000_000).isoformat(),
                        "previous_segment_id": move.previous_segment_id,
                        "previous_segment_name": None
                        if move.previous_segment_id is None
                        else names(move.previous_segment_id),
                        "segment_id": move.segment_id,
                        "segment_name": names(move.segment_id),
                        "reason": move.reason,
                        "model_version": move.model_version,
                    }
                    for move in moves
                ],
            }
        )

    def local_populations(self) -> dict[str, Any]:
        """This worker's share: populations of the partitions it owns."""
        customers, held = self.state.populations.totals()
        population, held = +customers, +held
        return {
            "partitions": sorted(self.ownership.owned),
            "population": {str(k): v for k, v in population.items()},
            "holdout": {str(k): v for k, v in held.items()},
        }

    async def _members(self) -> list[str]:
        """The web URLs of every worker in the group (this one included)."""
        urls = set(self.app.router.external_topics_metadata())
        urls.add(str(self.app.conf.canonical_url))
        return sorted(urls)

    async def _fetch(self, url: str) -> dict[str, Any] | None:
        if url.rstrip("/") == str(self.app.conf.canonical_url).rstrip("/"):
            return self.local_populations()
        try:
            async with self.app.http_client.get(url.rstrip("/") + LOCAL_SEGMENTS) as response:
                if response.status != 200:
                    return None
                body: dict[str, Any] = await response.json()
                return body
        except Exception as exc:
            log.warning("segments: %s did not answer: %s", url, exc)
            return None

    async def segments(self, view: View) -> Response:
        """The active model's segments with their live populations over the group."""
        rescorer = self.state.rescorer
        if rescorer is None:
            return view.error(503, "no model is loaded yet")
        members = await self._members()
        answers = await asyncio.gather(*(self._fetch(url) for url in members))
        population, held, partitions = group_populations(answers)
        model = rescorer.model
        return view.json(
            {
                "model_version": model.version,
                "partitions_reporting": len(partitions),
                "partitions": self.app.conf.topic_partitions,
                "workers": len(members),
                "workers_reporting": sum(a is not None for a in answers),
                "segments": [
                    {
                        "segment_id": s.segment_id,
                        "name": s.name,
                        "description": s.profile.description if s.profile else "",
                        "population": population.get(str(s.segment_id), 0),
                        "holdout_population": held.get(str(s.segment_id), 0),
                        "trained_share": s.profile.share if s.profile else None,
                    }
                    for s in model.segments
                ],
            }
        )
