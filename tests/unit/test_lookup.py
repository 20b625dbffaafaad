"""The lookup API's own decisions: which ids and limits it refuses, and how the group's
populations add up from each worker's share. Routing between real workers is the
integration tier's job (tests/integration/test_lookup.py)."""

from __future__ import annotations

import pytest

from schemas._base import ID_MAX_LENGTH
from scoring.customer_record import HISTORY_LIMIT
from streams.lookup import bad_id, group_populations, history_limit


def test_ids_the_contract_refuses_are_refused_with_the_reason() -> None:
    assert bad_id("c-1") is None
    assert bad_id("x" * ID_MAX_LENGTH) is None
    assert bad_id("  ") == "customer id is empty"
    assert bad_id("x" * (ID_MAX_LENGTH + 1)) == (
        f"customer id is longer than {ID_MAX_LENGTH} characters"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, HISTORY_LIMIT),
        ("1", 1),
        (str(HISTORY_LIMIT), HISTORY_LIMIT),
        ("0", f"limit must be between 1 and {HISTORY_LIMIT} (the history kept per customer)"),
        (
            str(HISTORY_LIMIT + 1),
            f"limit must be between 1 and {HISTORY_LIMIT} (the history kept per customer)",
        ),
        ("ten", "limit 'ten' is not a whole number"),
        ("2.5", "limit '2.5' is not a whole number"),
    ],
)
def test_the_history_limit_is_a_count_within_what_is_kept(
    text: str | None, expected: object
) -> None:
    assert history_limit(text) == expected


def test_populations_add_up_over_the_workers_that_answered() -> None:
    answers = [
        {"partitions": [0, 2], "population": {"1": 10, "2": 4}, "holdout": {"1": 1}},
        None,  # a worker that did not answer adds nothing, and its partitions do not report
        {"partitions": [1], "population": {"2": 6, "3": 1}, "holdout": {"2": 2, "3": 1}},
    ]
    population, held, partitions = group_populations(answers)
    assert population == {"1": 10, "2": 10, "3": 1}
    assert held == {"1": 1, "2": 2, "3": 1}
    assert partitions == {0, 1, 2}
    assert group_populations([None, None]) == ({}, {}, set())
