"""Which assignment the worker takes, and when: a rebalance begun since voids it."""

from __future__ import annotations

from streams.ownership import Ownership


def test_an_assignment_waits_for_its_own_generations_recovery() -> None:
    ownership = Ownership()
    ownership.on_assigned({0, 1, 2}, generation=3, revocations=3)
    assert not ownership.recovered(None, 3)
    assert not ownership.recovered(2, 3)  # an older recovery finishing late
    assert ownership.recovered(3, 3)


def test_a_revocation_voids_the_assignment_not_yet_taken() -> None:
    ownership = Ownership()
    ownership.on_assigned({0, 1, 2}, generation=3, revocations=3)
    ownership.on_revoked()
    assert ownership.pending is None
    assert not ownership.recovered(3, 3)
    assert not ownership.reading


def test_a_rebalance_begun_after_the_assignment_holds_it_back() -> None:
    """Faust counts the revocation in its consumer thread before the worker hears of it."""
    ownership = Ownership()
    ownership.on_assigned({0, 1}, generation=7, revocations=12)
    assert not ownership.recovered(7, 13)


def test_partitions_gone_in_between_stay_lost_across_a_voided_assignment() -> None:
    ownership = Ownership(owned={0, 1, 2})
    ownership.on_assigned({0}, generation=4, revocations=4)
    ownership.on_revoked()
    ownership.on_assigned({0, 1, 2}, generation=5, revocations=5)
    assert ownership._lost == {1, 2}  # their in-memory state is someone else's by now
