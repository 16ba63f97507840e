"""wirecore: one HTTP client engine (Rust) for Python.

``Client`` blocks with the GIL released; ``AsyncClient`` returns asyncio awaitables that cancel
the engine's work when the task is cancelled. Both take the engine's config as keyword
arguments, a dict, or JSON text, and every failure is a :class:`WirecoreError` with a ``.code``.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from . import _wirecore
from ._client import AsyncClient, Client, Headers, Response, ServerSentEvent, Timeout, Timings
from ._dead_letter import DeadLetter
from ._log import disable_logging, enable_logging
from ._span import Span
from .config import Config
from .exceptions import (
    BodyTooLargeError,
    CircuitOpenError,
    ClientClosedError,
    ConfigError,
    ConnectError,
    ConnectTimeout,
    DecodingError,
    DNSError,
    HTTPStatusError,
    InternalError,
    InvalidHeader,
    InvalidRequest,
    InvalidURL,
    NetworkError,
    OverloadedError,
    PoolTimeout,
    ProtocolError,
    RateLimitedError,
    ReadTimeout,
    RedirectDowngradeError,
    RequestCancelled,
    TimeoutError,
    TLSError,
    TLSTimeout,
    TooManyRedirects,
    TotalTimeout,
    WirecoreError,
)

__version__: str = _wirecore.__version__

__all__ = [
    "AsyncClient",
    "BodyTooLargeError",
    "CircuitOpenError",
    "Client",
    "ClientClosedError",
    "Config",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "DNSError",
    "DeadLetter",
    "DecodingError",
    "HTTPStatusError",
    "Headers",
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
    "Response",
    "ServerSentEvent",
    "Span",
    "TLSError",
    "TLSTimeout",
    "Timeout",
    "TimeoutError",
    "Timings",
    "TooManyRedirects",
    "TotalTimeout",
    "WirecoreError",
    "__version__",
    "disable_logging",
    "enable_logging",
]

# Engine threads must not enter the interpreter once it starts finalizing.
atexit.register(_wirecore._shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_wirecore._after_fork)


def __getattr__(name: str) -> Any:
    # `wirecore.httpx` loads on first use, so httpx stays an optional dependency.
    if name == "httpx":
        import importlib

        return importlib.import_module(".httpx", __name__)
    raise AttributeError(f"module 'wirecore' has no attribute {name!r}")
