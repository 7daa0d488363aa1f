"""Errors a user can act on. Every message says what went wrong and where."""

from __future__ import annotations


class OverseerError(Exception):
    """Base class: anything overseer raises on purpose. The CLI prints these without a traceback."""


class InputError(OverseerError):
    """A sample file (or spec, or seed file) is malformed. Carries the location."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path, self.line, self.field = path, line, field
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field!r})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")
        self.bare_message = message


class SpecError(InputError):
    """The spec file cannot be parsed into clauses."""


class ConfigError(OverseerError):
    """A flag, environment variable or config file value is wrong."""


class ProviderError(OverseerError):
    """A model backend failed. `retryable` tells the single retry layer whether to try again."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class TransientProviderError(ProviderError):
    """429, 5xx, timeouts, dropped connections: worth another attempt."""

    retryable = True


class AuthenticationError(ProviderError):
    """401: the key is missing or wrong. Stops the whole run; retrying cannot help."""


class RunError(OverseerError):
    """The run store or a resume request is inconsistent."""


class StoreError(RunError):
    """A workspace file (the run store, the secret key) is damaged or unreadable. Says how to recover."""


class StoreLockedError(StoreError):
    """Another process held the run store's write lock past the busy timeout: trying again later can succeed."""
