"""The one retry policy (dvr/lib/retry.py), on a clock of the test's own: no real sleeping."""

from __future__ import annotations

import pytest

from dvr.lib.retry import RetryPolicy, call_with_retries


class Flaky(Exception):
    pass


class Clock:
    """A clock that moves only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(times: int, *, then: str = "done"):
    calls: list[int] = []

    def call(attempt: int) -> str:
        calls.append(attempt)
        if len(calls) <= times:
            raise Flaky(f"attempt {attempt}")
        return then

    return call, calls


def policy(clock: Clock, **kwargs) -> RetryPolicy:
    return RetryPolicy(clock=lambda: clock.now, sleep=clock.sleep, **kwargs)


def test_it_backs_off_exponentially_and_returns_the_first_success():
    clock = Clock()
    call, calls = failing(3)

    result = call_with_retries(call, policy=policy(clock, budget=60, base=0.5, cap=10), retryable=lambda e: True)

    assert result == "done"
    assert calls == [1, 2, 3, 4]
    assert clock.slept == [0.5, 1.0, 2.0]


def test_a_hint_from_the_server_beats_the_backoff():
    clock = Clock()
    call, _ = failing(2)

    call_with_retries(call, policy=policy(clock, budget=60), retryable=lambda e: True, hint=lambda e: 7.0)

    assert clock.slept == [7.0, 7.0]


def test_it_gives_up_after_its_tries_with_the_last_error():
    clock = Clock()
    call, calls = failing(10)

    with pytest.raises(Flaky, match="attempt 4"):
        call_with_retries(call, policy=policy(clock, budget=60, tries=4, base=0.5), retryable=lambda e: True)

    assert calls == [1, 2, 3, 4] and clock.slept == [0.5, 1.0, 2.0]


def test_it_never_waits_past_its_budget():
    clock = Clock()
    call, calls = failing(10)

    with pytest.raises(Flaky):
        call_with_retries(call, policy=policy(clock, budget=5, base=1, cap=8), retryable=lambda e: True)

    # 1 + 2 = 3 s waited; the next wait (4 s) would end at 7 s, past the 5 s budget.
    assert clock.slept == [1, 2] and len(calls) == 3


def test_an_error_it_is_not_told_to_retry_propagates_at_once():
    clock = Clock()
    call, calls = failing(1)

    with pytest.raises(Flaky):
        call_with_retries(call, policy=policy(clock, budget=60), retryable=lambda e: False)

    assert calls == [1] and clock.slept == []


def test_jitter_keeps_each_wait_between_half_and_all_of_the_backoff():
    clock = Clock()
    jittery = policy(clock, budget=60, base=1, cap=8, jitter=True)

    waits = [jittery.backoff(attempt) for attempt in (1, 2, 3, 4, 5) for _ in range(20)]

    for attempt, wait in zip([a for a in (1, 2, 3, 4, 5) for _ in range(20)], waits, strict=True):
        full = min(2.0 ** (attempt - 1), 8)
        assert full / 2 <= wait <= full
