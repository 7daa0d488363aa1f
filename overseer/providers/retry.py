"""The single retry layer. SDKs run with max_retries=0; this retries 429/5xx/timeouts/dropped connections,
honouring Retry-After, and never retries 400/401/403 (they cannot succeed on a second try)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from overseer.errors import ProviderError

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


class RetryPolicy:
    def __init__(self, max_attempts: int = 6, initial_wait: float = 1.0, max_wait: float = 60.0,
                 max_retry_after: float = 600.0) -> None:
        self.max_attempts = max_attempts
        # Jitter scales with the first wait, so fast test policies stay fast and real ones spread their retries.
        self.backoff = wait_exponential_jitter(multiplier=initial_wait, max=max_wait, jitter=initial_wait)
        self.max_wait = max_wait
        self.max_retry_after = max_retry_after

    def delay(self, failed_attempts: int, exc: BaseException | None) -> float:
        """Seconds to wait after `failed_attempts` failures, the last being `exc`."""
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = failed_attempts
        backoff = self.backoff(state)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # The server said when it will accept us again: never come back sooner than that.
            return max(float(retry_after), min(backoff, self.max_wait))
        return backoff


def _waits_too_long(exc: BaseException, policy: RetryPolicy) -> bool:
    """A Retry-After of hours (an exhausted daily quota) is an answer, not a pause: fail the call now."""
    retry_after = getattr(exc, "retry_after", None)
    return retry_after is not None and retry_after > policy.max_retry_after


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy,
                       on_retry: Callable[[BaseException], None] | None = None) -> tuple[T, int]:
    """Run `call` under the policy; returns (result, attempts). Re-raises the last error when attempts run out."""
    try:  # fast path: most calls succeed first time, and tenacity's machinery costs ~0.2 ms of CPU per call
        return await call(), 1
    except Exception as exc:
        if not is_retryable(exc) or policy.max_attempts <= 1 or _waits_too_long(exc, policy):
            raise
        first_failure = exc
    if on_retry:
        on_retry(first_failure)
    await asyncio.sleep(policy.delay(1, first_failure))

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return policy.delay(state.attempt_number + 1, exc)  # +1: the fast-path attempt already failed

    def before_sleep(state: RetryCallState) -> None:
        if on_retry and state.outcome is not None and (exc := state.outcome.exception()) is not None:
            on_retry(exc)

    attempts = 1
    retrying = AsyncRetrying(stop=stop_after_attempt(policy.max_attempts - 1), wait=wait, reraise=True,
                             retry=retry_if_exception(lambda e: is_retryable(e) and not _waits_too_long(e, policy)),
                             before_sleep=before_sleep)
    async for attempt in retrying:
        with attempt:
            attempts += 1
            result = await call()
    return result, attempts


def with_retries_sync(call: Callable[[], T], policy: RetryPolicy) -> tuple[T, int]:
    """`with_retries` for blocking calls (the OpenAI embedder): the same policy, the same errors retried, the
    same waits; a plain loop because tenacity's async machinery cannot run inside a caller's event loop."""
    attempt = 1
    while True:
        try:
            return call(), attempt
        except Exception as exc:
            if not is_retryable(exc) or attempt >= policy.max_attempts or _waits_too_long(exc, policy):
                raise
            time.sleep(policy.delay(attempt, exc))
            attempt += 1
