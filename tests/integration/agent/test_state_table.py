"""Conditional writes on the moto server: of two writers racing for a row, exactly one wins."""

from __future__ import annotations

import pytest

from ocap_agent.state import InstanceState, SessionState, TransitionConflict, instance_key, session_key


def test_of_writers_that_all_saw_the_row_healthy_exactly_one_claims_it(state_table) -> None:
    """The race, interleaved deterministically: every claimer read Healthy, then all write.

    Gap named: moto evaluates a condition and writes without a lock, so truly
    simultaneous requests can both pass on moto (DynamoDB evaluates a
    condition atomically per item). The interleaving below is the race's
    worst case and is what the condition must decide.
    """
    pk = instance_key("i-0race")
    state_table.create(pk, InstanceState.HEALTHY)
    seen = [state_table.get(pk) for _ in range(8)]
    assert all(r is not None and r["state"] == InstanceState.HEALTHY for r in seen)
    results = []
    for n in range(8):
        try:
            state_table.transition(
                pk, InstanceState.CLAIMED, expect={InstanceState.HEALTHY}, session_id=f"s{n}"
            )
            results.append("won")
        except TransitionConflict:
            results.append("lost")
    assert results == ["won"] + ["lost"] * 7
    row = state_table.get(pk)
    assert row is not None and row["session_id"] == "s0" and row["revision"] == 2


def test_create_missing_creates_once_and_create_refuses_duplicates(state_table) -> None:
    pk = instance_key("i-0new")
    row = state_table.transition(pk, InstanceState.WARMING_UP, create_missing=True, image_version="1.0.0")
    assert row["state"] == InstanceState.WARMING_UP and row["revision"] == 1
    state_table.create(session_key("s1"), SessionState.RECORDING)
    with pytest.raises(TransitionConflict, match="already exists"):
        state_table.create(session_key("s1"), SessionState.RECORDING)


def test_transition_of_a_missing_row_conflicts_without_create_missing(state_table) -> None:
    with pytest.raises(TransitionConflict):
        state_table.transition(session_key("nope"), SessionState.UPLOADING)
    assert state_table.get(session_key("nope")) is None
