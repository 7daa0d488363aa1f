"""overseer.providers.retry.with_retries: the single retry layer (429/5xx retried, Retry-After honoured,
400/401 never retried, attempts bounded)."""

from __future__ import annotations

import time

import pytest

from overseer.errors import AuthenticationError, ProviderError, TransientProviderError
from overseer.providers.retry import RetryPolicy, with_retries


def fast_policy(max_attempts: int = 4) -> RetryPolicy:
    # max_wait caps tenacity's jitter too, so back-off stays under 50 ms per retry in these tests.
    return RetryPolicy(max_attempts=max_attempts, initial_wait=0.01, max_wait=0.05)


class FakeCall:
    """An async callable that raises the queued errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_success_first_time_is_one_attempt():
    call = FakeCall()
    assert await with_retries(call, fast_policy()) == ("ok", 1)


async def test_retryable_error_then_success_is_two_attempts():
    call = FakeCall(TransientProviderError("503", status=503))
    assert await with_retries(call, fast_policy()) == ("ok", 2)
    assert call.calls == 2


async def test_several_retryable_errors_then_success_counts_every_attempt():
    call = FakeCall(*(TransientProviderError("429", status=429) for _ in range(3)))
    assert await with_retries(call, fast_policy(max_attempts=4)) == ("ok", 4)


@pytest.mark.parametrize("error", [ProviderError("400 bad request", status=400),
                                   AuthenticationError("401", status=401),
                                   ValueError("a bug, not a provider failure")])
async def test_non_retryable_error_is_raised_after_one_attempt(error):
    call = FakeCall(error)
    with pytest.raises(type(error)):
        await with_retries(call, fast_policy())
    assert call.calls == 1


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
async def test_attempts_are_bounded_by_max_attempts_and_the_last_error_is_raised(max_attempts):
    errors = [TransientProviderError(f"failure {i}", status=503) for i in range(10)]
    call = FakeCall(*errors)
    with pytest.raises(TransientProviderError, match=f"failure {max_attempts - 1}$"):
        await with_retries(call, fast_policy(max_attempts=max_attempts))
    assert call.calls == max_attempts


async def test_on_retry_is_told_about_each_error_that_is_retried():
    seen: list[BaseException] = []
    errors = [TransientProviderError(str(i), status=503) for i in range(3)]
    with pytest.raises(TransientProviderError):
        await with_retries(FakeCall(*errors), fast_policy(max_attempts=3), seen.append)
    assert seen == errors[:2]  # the third failure is final, not retried


async def test_retry_after_is_honoured_on_the_first_retry():
    call = FakeCall(TransientProviderError("429", status=429, retry_after=0.3))
    started = time.monotonic()
    assert await with_retries(call, fast_policy()) == ("ok", 2)
    assert time.monotonic() - started >= 0.3


async def test_retry_after_is_honoured_on_later_retries_too():
    call = FakeCall(*(TransientProviderError("429", status=429, retry_after=0.2) for _ in range(2)))
    started = time.monotonic()
    assert await with_retries(call, fast_policy()) == ("ok", 3)
    assert time.monotonic() - started >= 0.4


def test_delay_never_comes_back_before_retry_after_even_above_max_wait():
    policy = fast_policy()
    assert policy.delay(1, TransientProviderError("429", retry_after=7)) == 7
    assert policy.delay(1, TransientProviderError("503")) <= 0.05
