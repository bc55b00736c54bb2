from __future__ import annotations

import random

import pytest

from core.backoff import Backoff
from core.supervisor.policy import LifecyclePolicy, decide_after_crash
from core.supervisor.states import (
    TRANSITIONS,
    IllegalTransition,
    ServerState,
    can_transition,
    check_transition,
)

S = ServerState


def test_every_state_has_a_row_and_no_self_loops() -> None:
    assert set(TRANSITIONS) == set(ServerState)
    for state, targets in TRANSITIONS.items():
        assert state not in targets


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (S.STOPPED, S.STARTING, True),
        (S.STOPPED, S.RUNNING, False),
        (S.STARTING, S.RUNNING, True),
        (S.RUNNING, S.STOPPING, True),
        (S.RUNNING, S.STARTING, False),
        (S.STOPPING, S.STOPPED, True),
        (S.STOPPING, S.RUNNING, False),
        (S.CRASHED, S.STARTING, True),
        (S.CRASHED, S.RUNNING, False),
        (S.FAILED, S.STARTING, True),
        (S.FAILED, S.CRASHED, False),
    ],
)
def test_transition_table(old: ServerState, new: ServerState, ok: bool) -> None:
    assert can_transition(old, new) is ok
    if ok:
        check_transition(old, new)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(old, new)


def test_backoff_doubles_caps_and_jitters() -> None:
    backoff = Backoff(base=1, cap=8, jitter=0.5, rng=random.Random(1))
    delays = [backoff.next() for _ in range(6)]
    caps = [1, 2, 4, 8, 8, 8]
    for delay, cap in zip(delays, caps, strict=True):
        assert cap * 0.5 <= delay <= cap
    backoff.reset()
    assert backoff.peek() == 1


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=2, cap=1)


def test_crash_decisions() -> None:
    policy = LifecyclePolicy(max_crashes=3, backoff_base=1, backoff_cap=3)
    first = decide_after_crash(policy, 1)
    assert (first.give_up, first.restart_in, first.attempt) == (False, 1, 1)
    assert decide_after_crash(policy, 2).restart_in == 2
    last = decide_after_crash(policy, 3)
    assert last.give_up and last.restart_in is None
    off = decide_after_crash(LifecyclePolicy(auto_restart=False), 1)
    assert not off.give_up and off.restart_in is None
    paused = decide_after_crash(policy, 1, paused=True)
    assert paused.restart_in is None and not paused.give_up
    capped = decide_after_crash(LifecyclePolicy(max_crashes=50, backoff_base=1, backoff_cap=3), 9)
    assert capped.restart_in == 3


def test_policy_from_settings_ignores_unrelated_keys() -> None:
    policy = LifecyclePolicy.from_settings({"max_crashes": 2, "hostname": "x"})
    assert policy.max_crashes == 2


def test_a_stored_value_the_rules_no_longer_take_falls_back_to_its_default() -> None:
    # an older version's or a hand-edited row must not break crash handling
    policy = LifecyclePolicy.from_settings(
        {"memory_limit_mb": 6, "max_crashes": 3, "backoff_base": "soon"}
    )
    assert policy.memory_limit_mb is None and policy.backoff_base == 2.0
    assert policy.max_crashes == 3
