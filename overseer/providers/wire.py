"""HTTP-level helpers shared by the SDK backends: status → retryable or not, Retry-After, server messages,
and repair of the raw control characters grammar-constrained servers put inside JSON strings."""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from overseer.errors import AuthenticationError, ProviderError, TransientProviderError

CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
TRANSIENT_STATUS = {408, 409, 429}  # plus every 5xx; the same set the SDKs would retry themselves
CLIENT_SIDE_S = 30.0  # floor for the connect, write and pool phases (see sdk_timeout)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, `retry-after` seconds, or an HTTP date."""
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def server_message(exc: Any) -> str:
    """The human-readable part of an SDK status error: body.error.message, else the SDK's message."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
    return str(getattr(exc, "message", None) or exc)


def escape_raw_controls(text: str) -> str:
    """Escape raw control characters (newline, tab, ...) inside JSON strings. llama-cpp-python's schema grammar
    lets string characters be anything but `"` and `\\`, so its "JSON" can hold a literal newline that strict
    parsers reject; escaping gives exactly the value a lenient parser would read, and valid JSON is unchanged."""
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch < " ":
                ch = CONTROL_ESCAPES.get(ch) or f"\\u{ord(ch):04x}"
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


def sdk_timeout(sdk: ModuleType, seconds: float) -> Any:
    """The SDK timeout for "the server must answer within `seconds`". Only the read waits on the server; connecting
    to it, writing the request and taking a pooled connection are the client's own work, and a client whose event
    loop is busy (many calls in flight on a loaded machine) missed a short deadline there before the request ever
    left: it counted an attempt the server never saw and retried a call that was never made. Those phases get a
    generous floor instead; an unreachable server still fails, after CLIENT_SIDE_S."""
    local = max(seconds, CLIENT_SIDE_S)
    return sdk.Timeout(seconds, connect=local, write=local, pool=local)


def map_status_error(status: int, message: str, headers: Mapping[str, str] | None, *, key_env: str,
                     where: str, placeholder_key: bool = False) -> ProviderError:
    """One HTTP status → the error class the single retry layer understands (shared with anthropic.py)."""
    if status == 401:
        if placeholder_key:
            return AuthenticationError(f"{where} requires an API key: set {key_env} ({message})", status=401)
        return AuthenticationError(f"the key in {key_env} was rejected by {where}: {message}", status=401)
    if status in TRANSIENT_STATUS or status >= 500:
        if status >= 500 and "validation error" in message:
            # llama-cpp-python's server reports request validation errors as 500s; repeating cannot help.
            return ProviderError(f"{where} rejected the request ({status}): {message}", status=status)
        return TransientProviderError(f"{where} returned {status}: {message}", status=status,
                                      retry_after=parse_retry_after(headers))
    return ProviderError(f"{where} rejected the request ({status}): {message}", status=status)


@contextlib.contextmanager
def sdk_errors(sdk: ModuleType, base_error: type[Exception], *, where: str, timeout: float, key_env: str,
               placeholder_key: bool = False) -> Iterator[None]:
    """Map the exceptions of an SDK call (`openai` or `anthropic`, which share their exception names) to the
    errors the single retry layer understands."""
    try:
        yield
    except sdk.APIStatusError as exc:
        raise map_status_error(exc.status_code, server_message(exc), exc.response.headers, key_env=key_env,
                               where=where, placeholder_key=placeholder_key) from exc
    except sdk.APITimeoutError as exc:  # a subclass of APIConnectionError, so it comes first
        raise TransientProviderError(f"{where} did not answer within {timeout}s") from exc
    except sdk.APIConnectionError as exc:
        raise TransientProviderError(f"cannot reach {where}: {exc}") from exc
    except base_error as exc:
        raise ProviderError(f"{where}: {exc}") from exc
    except json.JSONDecodeError as exc:  # a 2xx whose body was cut short: the SDKs let the parse error out
        raise TransientProviderError(f"{where} sent a response that is not valid JSON: {exc}") from exc
