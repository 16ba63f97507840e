"""Every wirecore failure is a :class:`WirecoreError` with a stable ``.code``.

Each engine error code maps to one class here (``BY_CODE``); classes also subclass the builtin
a Python caller would catch (``TimeoutError``, ``ConnectionError``, ``ValueError``).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import Response

__all__ = [
    "BY_CODE",
    "BodyTooLargeError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "DNSError",
    "DecodingError",
    "HTTPStatusError",
    "InternalError",
    "InvalidHeader",
    "InvalidRequest",
    "InvalidURL",
    "NetworkError",
    "OverloadedError",
    "PoolTimeout",
    "ProtocolError",
    "RateLimitedError",
    "ReadTimeout",
    "RedirectDowngradeError",
    "RequestCancelled",
    "TLSError",
    "TLSTimeout",
    "TimeoutError",
    "TooManyRedirects",
    "TotalTimeout",
    "WirecoreError",
]


class WirecoreError(Exception):
    """Base class of every wirecore error; ``code`` is the engine's stable error code."""

    code: str
    message: str

    def __init__(self, message: str, code: str = "internal") -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.code))


class ConfigError(WirecoreError, ValueError):
    """A config key is unknown, of the wrong type or out of range (``invalid_config``)."""


class InvalidURL(WirecoreError, ValueError):
    """The URL cannot be parsed or is not http/https (``invalid_url``)."""


class InvalidHeader(WirecoreError, ValueError):
    """A header name or value is malformed (``invalid_header``)."""


class InvalidRequest(WirecoreError, ValueError):
    """A method, body or other argument is malformed (``invalid_request``)."""


class ConnectError(WirecoreError, ConnectionError):
    """TCP connect failed (``connect``)."""


class DNSError(ConnectError):
    """The host name did not resolve (``dns``)."""


class TLSError(WirecoreError, ConnectionError):
    """TLS handshake or certificate verification failed (``tls``)."""


class NetworkError(WirecoreError, ConnectionError):
    """The connection failed after it was established (``io``)."""


class ProtocolError(WirecoreError):
    """The peer violated HTTP (``protocol``)."""


class TimeoutError(WirecoreError, builtins.TimeoutError):
    """Any wirecore timeout (``timeout.*``)."""


class TotalTimeout(TimeoutError):
    """The whole request exceeded its deadline (``timeout.total``)."""


class ConnectTimeout(TimeoutError):
    """TCP connect took too long (``timeout.connect``)."""


class TLSTimeout(TimeoutError):
    """The TLS handshake took too long (``timeout.tls``)."""


class ReadTimeout(TimeoutError):
    """No byte arrived within ``timeouts.read_idle_ms`` (``timeout.read``)."""


class PoolTimeout(TimeoutError):
    """No connection became available in time (``timeout.pool``)."""


class DecodingError(WirecoreError, ValueError):
    """The body could not be decoded (``decode``)."""


class BodyTooLargeError(WirecoreError):
    """The body exceeded ``limits.max_response_body_bytes`` (``body_too_large``)."""


class TooManyRedirects(WirecoreError):
    """More than ``redirect.max`` (or ``max_redirects``) redirects, or any redirect of a request
    sent with ``redirect="error"`` (``too_many_redirects``)."""


class RedirectDowngradeError(WirecoreError):
    """A redirect from https to http while ``redirect.allow_downgrade`` is false
    (``redirect_downgrade``)."""


class ClientClosedError(WirecoreError, RuntimeError):
    """The client was closed (``closed``)."""


class RequestCancelled(WirecoreError):
    """The request was cancelled (``cancelled``)."""


class CircuitOpenError(WirecoreError):
    """The origin's circuit breaker is open (``circuit_open``)."""


class RateLimitedError(WirecoreError):
    """A rate limit refused the request (``rate_limited``)."""


class OverloadedError(WirecoreError):
    """The concurrency limit refused the request (``overloaded``)."""


class InternalError(WirecoreError):
    """A bug in wirecore (``internal``)."""


class HTTPStatusError(WirecoreError):
    """Raised by ``Response.raise_for_status()`` for a 4xx or 5xx status (``http_status``)."""

    response: Response

    def __init__(self, message: str, code: str = "http_status", *, response: Any = None) -> None:
        super().__init__(message, code)
        self.response = response


BY_CODE: dict[str, type[WirecoreError]] = {
    "invalid_config": ConfigError,
    "invalid_url": InvalidURL,
    "invalid_header": InvalidHeader,
    "invalid_request": InvalidRequest,
    "dns": DNSError,
    "connect": ConnectError,
    "tls": TLSError,
    "io": NetworkError,
    "protocol": ProtocolError,
    "timeout.total": TotalTimeout,
    "timeout.connect": ConnectTimeout,
    "timeout.tls": TLSTimeout,
    "timeout.read": ReadTimeout,
    "timeout.pool": PoolTimeout,
    "decode": DecodingError,
    "body_too_large": BodyTooLargeError,
    "too_many_redirects": TooManyRedirects,
    "closed": ClientClosedError,
    "cancelled": RequestCancelled,
    "circuit_open": CircuitOpenError,
    "rate_limited": RateLimitedError,
    "overloaded": OverloadedError,
    "redirect_downgrade": RedirectDowngradeError,
    "internal": InternalError,
}
