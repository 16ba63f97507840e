# The compiled engine glue. Use wirecore.Client / wirecore.AsyncClient instead.

import asyncio
from typing import Any, final

from .exceptions import WirecoreError

__all__ = [
    "ERROR_CODES",
    "Client",
    "Completer",
    "Pending",
    "RawResponse",
    "Started",
    "Upload",
    "__version__",
    "_after_fork",
    "_error_for_code",
    "_shutdown",
]

__version__: str
ERROR_CODES: tuple[str, ...]

def _shutdown() -> None: ...
def _after_fork() -> None: ...
def _error_for_code(code: str, message: str) -> WirecoreError: ...

@final
class Completer:
    def __new__(cls, event_loop: asyncio.AbstractEventLoop | None = None) -> Completer: ...
    def fileno(self) -> int: ...
    def drain(self) -> None: ...

@final
class Pending:
    def cancel(self) -> None: ...

@final
class Upload:
    def __new__(cls) -> Upload: ...
    @property
    def closed(self) -> bool: ...
    def try_send(self, chunk: bytes) -> bool: ...
    def send(self, chunk: bytes) -> bool: ...
    def ready_async(self, completer: Completer, fut: asyncio.Future[Any]) -> Pending: ...
    def finish(self) -> None: ...
    def abort(self, message: str) -> None: ...

@final
class Started:
    def wait(self) -> RawResponse: ...
    def cancel(self) -> None: ...

@final
class RawResponse:
    @property
    def status_code(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def reused(self) -> bool: ...
    @property
    def http_version(self) -> str: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def timings(self) -> tuple[float, float, float, float, float]: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def content(self) -> bytes | None: ...
    @property
    def is_stream_open(self) -> bool: ...
    def next_chunk(self) -> bytes | None: ...
    def next_chunk_async(
        self, completer: Completer, fut: asyncio.Future[Any]
    ) -> Pending | None: ...
    def close(self) -> None: ...

@final
class Client:
    def __new__(cls, config_json: str) -> Client: ...
    def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
        stream: bool = False,
        *,
        idempotent: bool | None = None,
        rate_limit_key: str | None = None,
        priority: int | None = None,
        phases: tuple[float | None, float | None, float | None] | None = None,
    ) -> RawResponse: ...
    def start(
        self,
        upload: Upload,
        method: str,
        url: str,
        headers: list[tuple[str, str]] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        *,
        idempotent: bool | None = None,
        rate_limit_key: str | None = None,
        priority: int | None = None,
        phases: tuple[float | None, float | None, float | None] | None = None,
    ) -> Started: ...
    def send_async(
        self,
        completer: Completer,
        fut: asyncio.Future[Any],
        method: str,
        url: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
        stream: bool = False,
        *,
        idempotent: bool | None = None,
        rate_limit_key: str | None = None,
        priority: int | None = None,
        phases: tuple[float | None, float | None, float | None] | None = None,
        upload: Upload | None = None,
    ) -> Pending: ...
    def close(self, timeout: float = 5.0) -> None: ...
    def close_async(
        self, completer: Completer, fut: asyncio.Future[Any], timeout: float = 5.0
    ) -> Pending: ...
    def stats_json(self) -> str: ...
    def prometheus(self) -> str: ...
    def diagnostics_json(self) -> str: ...
    def diagnostics_text(self) -> str: ...
    def config_json(self) -> str: ...
