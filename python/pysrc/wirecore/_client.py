"""``Client``, ``AsyncClient`` and ``Response``: argument conversion around ``_wirecore``.

Nothing here does I/O: each call hands the whole request to the engine at once and wraps what
comes back. Async results arrive through a per-loop ``Completer`` that the engine wakes with
``call_soon_threadsafe``; cancelling the awaiting task cancels the engine's work.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import importlib
import json as _json
import os
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from http import HTTPStatus
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple, Union
from urllib.parse import urlencode

from . import _span, _wirecore
from ._dead_letter import DeadLetter, listen
from ._multipart import FileTypes, Multipart, _file_length
from ._span import Span
from .config import Config
from .exceptions import HTTPStatusError, InvalidRequest

__all__ = ["AsyncClient", "Client", "Headers", "Response", "Timeout", "Timings"]


class Timeout(NamedTuple):
    """Per-request timeouts in seconds; ``None`` keeps what the client's config says.

    ``total`` bounds the whole request (retries included), ``connect`` a TCP connect this request
    opens, ``read`` the longest silence while waiting for response bytes, ``pool`` the wait for a
    pooled connection. A plain number as ``timeout=`` means ``Timeout(total=number)``.
    """

    total: float | None = None
    connect: float | None = None
    read: float | None = None
    pool: float | None = None


#: The engine config: a ``Config`` dict (any mapping with the core's keys) or JSON text.
ConfigTypes = Union[Config, Mapping[str, Any], str, None]
HeaderTypes = Union["Headers", Mapping[str, str], Sequence[tuple[str, str]], None]
ParamTypes = Union[Mapping[str, Any], Sequence[tuple[str, Any]], str, None]
#: A whole body, or a streamed one: an iterable / async iterable of bytes, or a binary file.
ContentTypes = Union[
    bytes, bytearray, memoryview, str, Iterable[bytes], AsyncIterable[bytes], IO[bytes], None
]
TimeoutTypes = Union[float, Timeout, None]
#: RFC 9218 urgency 0 (most urgent) to 7, or "highest" (0), "high" (1), "normal" (3),
#: "low" (5), "lowest" (7).
PriorityTypes = Union[int, str, None]
#: What a redirect does: "follow" (the default), "manual" (the 3xx is the response) or "error"
#: (raises TooManyRedirects).
RedirectTypes = Literal["follow", "manual", "error"]
#: How a request uses the client's response cache: fetch's ``cache`` option (any case).
CacheModeTypes = Union[
    Literal["default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached"], None
]
#: Where a response came from when the client has a cache (``Response.cache_status``).
CacheStatus = Literal["hit", "miss", "stale", "revalidated"]

if TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack

    class _Options(TypedDict, total=False):
        params: ParamTypes
        headers: HeaderTypes
        timeout: TimeoutTypes
        idempotent: bool | None
        rate_limit_key: str | None
        priority: PriorityTypes
        cache: CacheModeTypes
        balance_key: str | None
        traceparent: str | None
        tracestate: str | None
        auth: tuple[str, str] | None
        follow_redirects: bool | None
        redirect: RedirectTypes | None
        max_redirects: int | None

    class _BodyOptions(_Options, total=False):
        content: ContentTypes
        files: FileTypes | None
        data: Mapping[str, Any] | None
        json: Any


class _Prepared(NamedTuple):
    method: str
    url: str
    headers: list[tuple[str, str]] | None
    body: bytes | None
    #: A streamed body's source (iterable, async iterable or file), else None.
    source: Any
    #: Keyword arguments for the engine call (timeouts, idempotent, rate_limit_key, priority,
    #: cache, balance_key, traceparent, tracestate).
    options: dict[str, Any]


# --- completers: one per event loop, cached per thread -----------------------------------------

_local = threading.local()


def _completer(loop: asyncio.AbstractEventLoop) -> _wirecore.Completer:
    cached: tuple[asyncio.AbstractEventLoop, _wirecore.Completer] | None = getattr(
        _local, "c", None
    )
    if cached is not None and cached[0] is loop:
        return cached[1]
    by_loop: dict[asyncio.AbstractEventLoop, _wirecore.Completer] | None = getattr(
        _local, "by_loop", None
    )
    if by_loop is None:
        by_loop = _local.by_loop = {}
    c = by_loop.get(loop)
    if c is None:
        for old in [lp for lp in by_loop if lp.is_closed()]:
            del by_loop[old]
        c = _wirecore.Completer(loop, socket=True)
        try:
            # The engine wakes the loop with a byte on this socket, never taking the GIL.
            loop.add_reader(c.fileno(), c.drain)
        except NotImplementedError:
            c = _wirecore.Completer(loop)
        by_loop[loop] = c
    _local.c = (loop, c)
    return c


def _reset_after_fork() -> None:
    global _local
    _local = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


async def _await(
    start: Callable[[_wirecore.Completer, asyncio.Future[Any]], _wirecore.Pending | None],
) -> Any:
    """Starts engine work that completes a fresh future; cancels the work if we are cancelled."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    pending = start(_completer(loop), fut)
    if pending is None:
        return None
    try:
        return await fut
    except BaseException:
        pending.cancel()
        raise


# --- argument conversion ----------------------------------------------------------------------


def _config_json(config: ConfigTypes, overrides: Mapping[str, Any]) -> str:
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, str):
        if not overrides:
            return config
        loaded = _json.loads(config)
        if not isinstance(loaded, dict):
            raise TypeError("config JSON must be an object")
        base = loaded
    elif isinstance(config, Mapping):
        base = dict(config)
    else:
        raise TypeError(f"config must be a dict or JSON text, not {type(config).__name__}")
    base.update(overrides)
    return _json.dumps(base)


def _header_list(headers: HeaderTypes) -> list[tuple[str, str]] | None:
    if headers is None:
        return None
    if isinstance(headers, Headers):
        return headers.multi_items()
    items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, str]] = []
    for pair in items:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"headers must be (name, value) pairs, got {pair!r}") from None
        out.append((_header_text(name, "name"), _header_text(value, f"value of {name!r}")))
    return out


def _header_text(v: object, what: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("latin-1")
    raise TypeError(f"header {what} must be str or bytes, not {type(v).__name__}")


def _has_header(headers: list[tuple[str, str]], name: str) -> bool:
    return any(n.lower() == name for n, _ in headers)


#: Bytes read from a file per chunk of a streamed body.
_FILE_CHUNK = 64 * 1024


def _seconds(v: object, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{what} must be seconds as a number, not {type(v).__name__}")
    try:
        return float(v)
    except OverflowError:  # an int beyond float range; the engine checks the rest
        raise InvalidRequest(
            f"{what} must be at most 31536000 (365 days) seconds, got {v}", "invalid_request"
        ) from None


def _priority(priority: object) -> int | str | None:
    # Only the type is checked here: the engine parses the value (wirecore::Priority::parse),
    # so every language accepts the same forms with the same message.
    if priority is None or isinstance(priority, str):
        return priority
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int 0-7 or a str, not {type(priority).__name__}")
    return priority


def _options(
    timeout: object,
    idempotent: object,
    rate_limit_key: object,
    priority: object,
    cache: object = None,
    balance_key: object = None,
    traceparent: object = None,
    tracestate: object = None,
) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if isinstance(timeout, Timeout):
        total = _seconds(timeout.total, "timeout.total")
        phases = (
            _seconds(timeout.connect, "timeout.connect"),
            _seconds(timeout.read, "timeout.read"),
            _seconds(timeout.pool, "timeout.pool"),
        )
        if total is not None:
            kw["timeout"] = total
        if phases != (None, None, None):
            kw["phases"] = phases
    elif timeout is not None:
        kw["timeout"] = _seconds(timeout, "timeout")
    if idempotent is not None:
        if not isinstance(idempotent, bool):
            raise TypeError(f"idempotent must be a bool, not {type(idempotent).__name__}")
        kw["idempotent"] = idempotent
    if rate_limit_key is not None:
        if not isinstance(rate_limit_key, str):
            raise TypeError(f"rate_limit_key must be str, not {type(rate_limit_key).__name__}")
        kw["rate_limit_key"] = rate_limit_key
    p = _priority(priority)
    if p is not None:
        kw["priority"] = p
    if cache is not None:
        # The engine parses the word (wirecore::CacheMode::parse), as in every language.
        if not isinstance(cache, str):
            raise TypeError(f"cache must be a str, not {type(cache).__name__}")
        kw["cache"] = cache
    if balance_key is not None:
        if not isinstance(balance_key, str):
            raise TypeError(f"balance_key must be str, not {type(balance_key).__name__}")
        kw["balance_key"] = balance_key
    for name, v in (("traceparent", traceparent), ("tracestate", tracestate)):
        if v is not None and not isinstance(v, str):
            raise TypeError(f"{name} must be str, not {type(v).__name__}")
    if traceparent is None and tracestate is None:
        # The caller's OpenTelemetry context (contextvars), when opentelemetry-api is installed.
        kw.update(_trace_context())
    else:
        # The engine checks both (W3C rules; tracestate needs a traceparent).
        if traceparent is not None:
            kw["traceparent"] = traceparent
        if tracestate is not None:
            kw["tracestate"] = tracestate
    return kw


_NO_OTEL: Any = object()
#: ``opentelemetry.propagate.inject``, looked up on first use; ``_NO_OTEL`` without it (the
#: fast paths of ``get`` then skip ``_options``).
_otel_inject: Any = None


def _trace_context() -> dict[str, str]:
    """The current OpenTelemetry context as the ``traceparent``/``tracestate`` options: what
    ``opentelemetry.propagate.inject`` writes (nothing without opentelemetry-api or outside a
    span)."""
    global _otel_inject
    if _otel_inject is None:
        try:
            _otel_inject = importlib.import_module("opentelemetry.propagate").inject
        except ImportError:
            _otel_inject = _NO_OTEL
    if _otel_inject is _NO_OTEL:
        return {}
    carrier: dict[str, str] = {}
    _otel_inject(carrier)
    return {k: carrier[k] for k in ("traceparent", "tracestate") if k in carrier}


def _redirects(
    kw: dict[str, Any], follow_redirects: object, redirect: object, max_redirects: object
) -> dict[str, Any]:
    """Adds the redirect options to ``kw``: httpx's ``follow_redirects`` (False returns the 3xx)
    or the engine's three-way ``redirect``; the engine checks the names and the bound."""
    if follow_redirects is not None:
        if not isinstance(follow_redirects, bool):
            raise TypeError(
                f"follow_redirects must be a bool, not {type(follow_redirects).__name__}"
            )
        if redirect is not None:
            raise TypeError("pass follow_redirects or redirect, not both")
        redirect = "follow" if follow_redirects else "manual"
    if redirect is not None:
        if not isinstance(redirect, str):
            raise TypeError(
                f"redirect must be 'follow', 'manual' or 'error', not {type(redirect).__name__}"
            )
        kw["redirect"] = redirect
    if max_redirects is not None:
        if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
            raise TypeError(f"max_redirects must be an int, not {type(max_redirects).__name__}")
        kw["max_redirects"] = max_redirects
    return kw


def _prepare(
    method: str,
    url: str,
    params: ParamTypes,
    headers: HeaderTypes,
    content: ContentTypes,
    data: Mapping[str, Any] | None,
    files: FileTypes | None,
    json: Any,
    auth: tuple[str, str] | None,
    options: dict[str, Any],
) -> _Prepared:
    if not isinstance(method, str):
        raise TypeError(f"method must be str, not {type(method).__name__}")
    if not isinstance(url, str):
        raise TypeError(f"url must be str, not {type(url).__name__}")
    if params:
        query = params if isinstance(params, str) else urlencode(params, doseq=True)
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    hs = _header_list(headers)
    if auth is not None:
        hs = _with_basic_auth(hs or [], auth)
    body: bytes | None = None
    source: Any = None
    given = (content is not None) + (data is not None or files is not None) + (json is not None)
    if given > 1:
        raise TypeError("pass at most one of content=, data= (with files=) and json=")
    if files is not None:
        form = Multipart(data, files)
        hs = hs or []
        if not _has_header(hs, "content-type"):
            hs.append(("content-type", form.content_type))
        body = form.whole()
        if body is None:
            source = form
            if form.length is not None and not _has_header(hs, "content-length"):
                hs.append(("content-length", str(form.length)))
    elif content is not None:
        if isinstance(content, str):
            body = content.encode()
        elif isinstance(content, (bytes, bytearray, memoryview)):
            body = bytes(content)
        elif hasattr(content, "read") or hasattr(content, "__aiter__"):
            source = content
            n = _file_length(content)
            if n is not None:
                hs = hs or []
                if not (_has_header(hs, "content-length") or _has_header(hs, "transfer-encoding")):
                    # A file of known size goes out with Content-Length (as httpx does), not
                    # chunked: some servers (object stores) refuse chunked uploads.
                    hs.append(("content-length", str(n)))
        elif isinstance(content, Iterable) and not isinstance(content, Mapping):
            source = content
        else:
            raise TypeError(
                "content must be bytes, str, an iterable or async iterable of bytes, or a "
                f"binary file, not {type(content).__name__}"
            )
    elif json is not None:
        body = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
        hs = hs or []
        if not _has_header(hs, "content-type"):
            hs.append(("content-type", "application/json"))
    elif data is not None:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, not {type(data).__name__}")
        body = urlencode(data, doseq=True).encode()
        hs = hs or []
        if not _has_header(hs, "content-type"):
            hs.append(("content-type", "application/x-www-form-urlencoded"))
    return _Prepared(method.upper(), url, hs, body, source, options)


def _with_basic_auth(hs: list[tuple[str, str]], auth: object) -> list[tuple[str, str]]:
    if not (
        isinstance(auth, tuple)
        and len(auth) == 2
        and all(isinstance(x, (str, bytes)) for x in auth)
    ):
        raise TypeError("auth must be a (username, password) tuple of str")
    user, pw = (x.encode() if isinstance(x, str) else x for x in auth)
    token = base64.b64encode(user + b":" + pw).decode()
    return [
        *(h for h in hs if h[0].lower() != "authorization"),
        ("authorization", f"Basic {token}"),
    ]


def _chunk(c: object) -> bytes:
    if isinstance(c, bytes):
        return c
    if isinstance(c, (bytearray, memoryview)):
        return bytes(c)
    if isinstance(c, str):
        return c.encode()
    raise TypeError(f"a streamed body must yield bytes, got {type(c).__name__}")


def _sync_chunks(source: Any) -> Iterator[bytes]:
    if hasattr(source, "read"):
        while True:
            c = source.read(_FILE_CHUNK)
            if not c:
                return
            yield _chunk(c)
    for c in source:
        yield _chunk(c)


def _feed_sync(up: _wirecore.Upload, source: Any) -> None:
    """Sends a streamed body from this thread while the engine sends it on."""
    try:
        for c in _sync_chunks(source):
            if c and not up.send(c):
                return  # the request ended (an early response, or an error): stop reading
        up.finish()
    except BaseException as e:
        up.abort(f"the request body's source raised {type(e).__name__}: {e}")
        raise


async def _feed_async(up: _wirecore.Upload, source: Any) -> None:
    """Sends a streamed body from the event loop, waiting for room in the engine's queue."""
    try:
        if hasattr(source, "__aiter__"):
            async for c in source:
                if not await _put(up, _chunk(c)):
                    return  # the request ended (an early response, or an error)
        else:
            for c in _sync_chunks(source):
                if not await _put(up, c):
                    return
        up.finish()
    except BaseException as e:
        up.abort(f"the request body's source raised {type(e).__name__}: {e}")
        raise


def _failure(task: asyncio.Task[None]) -> BaseException | None:
    if task.done() and not task.cancelled():
        return task.exception()
    return None


async def _put(up: _wirecore.Upload, c: bytes) -> bool:
    if not c:
        return True
    while not up.try_send(c):
        await _await(up.ready_async)
    return not up.closed


# --- Headers, Timings, Response ---------------------------------------------------------------


class Headers(Mapping[str, str]):
    """Case-insensitive multi-dict of header fields; ``h["x"]`` joins repeats with ``, ``."""

    __slots__ = ("_items",)

    def __init__(self, headers: HeaderTypes = None) -> None:
        items = _header_list(headers) or []
        self._items: list[tuple[str, str]] = [(n.lower(), v) for n, v in items]

    @classmethod
    def _from_lower(cls, items: list[tuple[str, str]]) -> Headers:
        h = cls.__new__(cls)
        h._items = items
        return h

    def __getitem__(self, key: str) -> str:
        values = self.get_list(key)
        if not values:
            raise KeyError(key)
        return ", ".join(values)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        k = key.lower()
        return any(n == k for n, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(n for n, _ in self._items))

    def __len__(self) -> int:
        return len({n for n, _ in self._items})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted(self._items) == sorted(other._items)
        if isinstance(other, Mapping):
            try:
                return sorted(self._items) == sorted(Headers(other)._items)
            except TypeError:
                return False
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def get_list(self, key: str) -> list[str]:
        """Every value of ``key``, in wire order."""
        k = key.lower()
        return [v for n, v in self._items if n == k]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, names lower-case, in wire order."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Timings(NamedTuple):
    """Where the time of one request went, in seconds (zero for a phase that was skipped)."""

    dns: float
    connect: float
    tls: float
    ttfb: float
    total: float


@dataclasses.dataclass(frozen=True)
class ServerSentEvent:
    """One Server-Sent Event."""

    #: The ``event:`` field; ``"message"`` when none was given.
    event: str = "message"
    #: The ``data:`` lines joined with ``"\n"``.
    data: str = ""
    #: The last event ID at dispatch (``""`` when none).
    id: str = ""
    #: A ``retry:`` (milliseconds) given with this event.
    retry: int | None = None

    def json(self) -> Any:
        """``data`` parsed as JSON."""
        return _json.loads(self.data)


class ResponseNotRead(RuntimeError):
    """``content`` of a streamed response was used before ``read()``."""


class StreamConsumed(RuntimeError):
    """``read()`` after the body was iterated: the bytes already handed out are gone."""


#: What ``read()`` reports when an exception (Ctrl-C, a cancelled task) cut it short.
_READ_CUT = "reading the response body was interrupted by {}; the body is incomplete"


class Response:
    """An HTTP response; bodies are read already unless it came from ``stream()``."""

    __slots__ = ("_content", "_headers", "_iterated", "_raw", "request_method", "status_code")

    def __init__(self, raw: _wirecore.RawResponse, method: str) -> None:
        self._raw = raw
        self.status_code: int = raw.status_code
        self.request_method = method
        self._content: bytes | None = raw.content
        self._headers: Headers | None = None
        #: Whether chunks of a streamed body were handed out (``read()`` can no longer be whole).
        self._iterated = False

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"

    # head

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers._from_lower([(n, v) for n, v in self._raw.headers])
        return self._headers

    @property
    def http_version(self) -> str:
        """``"HTTP/1.1"`` or ``"HTTP/2"`` (as httpx spells it)."""
        return self._raw.http_version

    @property
    def url(self) -> str:
        """The final URL, after redirects."""
        return self._raw.url

    @property
    def reason_phrase(self) -> str:
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def elapsed(self) -> datetime.timedelta:
        """From the call until the response (and its body, unless streamed) arrived."""
        return datetime.timedelta(seconds=self._raw.elapsed)

    @property
    def timings(self) -> Timings:
        return Timings(*self._raw.timings)

    @property
    def reused(self) -> bool:
        """Whether the request went over a pooled connection rather than a new one."""
        return self._raw.reused

    @property
    def cache_status(self) -> CacheStatus | None:
        """Where the response came from: ``"hit"``, ``"miss"``, ``"stale"`` or
        ``"revalidated"``; ``None`` when the cache took no part (none configured, a request it
        does not store, ``cache="no-store"``)."""
        return self._raw.cache_status  # type: ignore[return-value]

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        return 500 <= self.status_code < 600

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    def raise_for_status(self) -> Response:
        """Raises :class:`HTTPStatusError` for a 4xx or 5xx status; returns ``self`` otherwise."""
        if self.status_code >= 400:
            kind = "Client" if self.status_code < 500 else "Server"
            raise HTTPStatusError(
                f"{kind} error '{self.status_code} {self.reason_phrase}' for url '{self.url}'",
                response=self,
            )
        return self

    # body

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._raw.check()  # a read that failed or was cut short raises its error again
            raise ResponseNotRead("a streamed response's content needs read() or aread() first")
        return self._content

    @property
    def encoding(self) -> str:
        """The ``charset`` of ``Content-Type``, else ``utf-8``."""
        ct = self.headers.get("content-type", "")
        for part in ct.split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k.lower() == "charset" and v:
                return v.strip('"')
        return "utf-8"

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self, **kwargs: Any) -> Any:
        return _json.loads(self.content, **kwargs)

    @property
    def is_stream_consumed(self) -> bool:
        return self._content is not None or not self._raw.is_stream_open

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The body in chunks as they arrive (blocking, GIL released while waiting)."""
        if self._content is not None:
            yield from _rechunk(iter((self._content,)), chunk_size)
            return

        def chunks() -> Iterator[bytes]:
            self._iterated = True
            while (c := self._raw.next_chunk()) is not None:
                yield c

        yield from _rechunk(chunks(), chunk_size)

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The body in chunks as they arrive; cancelling the task cancels the read."""
        if self._content is not None:
            for part in _rechunk(iter((self._content,)), chunk_size):
                yield part
            return
        buf = bytearray()
        self._iterated = True
        while True:
            c: bytes | None = await _await(self._raw.next_chunk_async)
            if c is None:
                break
            if chunk_size is None:
                if c:
                    yield c
                continue
            buf += c
            while len(buf) >= chunk_size:
                yield bytes(buf[:chunk_size])
                del buf[:chunk_size]
        if buf:
            yield bytes(buf)

    def iter_events(self) -> Iterator[ServerSentEvent]:
        """The body as Server-Sent Events, parsed by the engine (blocking, GIL released while
        waiting). A ``GET``'s event stream reconnects when it ends or breaks, after the
        server's ``retry:``, with ``Last-Event-ID``; leaving the loop closes it."""
        raw = self._events()
        try:
            while (t := raw.next()) is not None:
                yield ServerSentEvent(*t)
        finally:
            raw.close()

    async def aiter_events(self) -> AsyncIterator[ServerSentEvent]:
        """Like :meth:`iter_events`; cancelling the task cancels the read."""
        raw = self._events()
        try:
            while (t := await _await(raw.next_async)) is not None:
                yield ServerSentEvent(*t)
        finally:
            raw.close()

    def _events(self) -> _wirecore.RawEvents:
        if self._iterated:
            raise StreamConsumed("the body was already iterated")
        self._iterated = True
        return self._raw.events()

    def read(self) -> bytes:
        """The whole body. A read cut short (Ctrl-C, an error) leaves the response failed:
        ``read()`` and ``content`` raise again rather than return part of the body."""
        if self._content is None:
            self._check_unread()
            try:
                self._content = b"".join(self.iter_bytes())
            except BaseException as e:
                self._raw.fail(_READ_CUT.format(type(e).__name__))
                raise
        return self._content

    async def aread(self) -> bytes:
        """The whole body; like :meth:`read`, a cancelled or failed read is never cached."""
        if self._content is None:
            self._check_unread()
            try:
                self._content = b"".join([c async for c in self.aiter_bytes()])
            except BaseException as e:
                self._raw.fail(_READ_CUT.format(type(e).__name__))
                raise
        return self._content

    def _check_unread(self) -> None:
        self._raw.check()
        if self._iterated:
            raise StreamConsumed(
                "the body was already iterated; read() needs a response whose body is unread"
            )

    def close(self) -> None:
        """Drops an unread streamed body (its connection is not reused)."""
        self._raw.close()

    async def aclose(self) -> None:
        self._raw.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _rechunk(chunks: Iterator[bytes], size: int | None) -> Iterator[bytes]:
    if size is None:
        for c in chunks:
            if c:
                yield c
        return
    if size <= 0:
        raise ValueError("chunk_size must be positive")
    buf = bytearray()
    for c in chunks:
        buf += c
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


# --- clients ----------------------------------------------------------------------------------


class _BaseClient:
    __slots__ = ("_dead_letters", "_raw", "_spans")

    def __init__(self, config: ConfigTypes = None, /, **kwargs: Unpack[Config]) -> None:
        """Builds a client from the engine's config: a dict, JSON text and/or keyword sections.

        Keyword arguments override top-level keys of ``config``. An unknown key or a bad value
        raises :class:`wirecore.ConfigError` naming the key.
        """
        self._raw = _wirecore.Client(_config_json(config, kwargs))
        self._dead_letters = False
        self._spans: threading.Thread | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The effective config, with every default filled in."""
        cfg: dict[str, Any] = _json.loads(self._raw.config_json())
        return cfg

    def stats(self) -> dict[str, Any]:
        """Every counter and latency summary, under the engine's metric names."""
        stats: dict[str, Any] = _json.loads(self._raw.stats_json())
        return stats

    def cookies(self) -> list[dict[str, Any]]:
        """The unexpired cookies in the engine's jar (``cookies={"enabled": True}``; empty while
        it is off), one dict each: ``name``, ``value``, ``domain``, ``host_only``, ``path``,
        ``secure``, ``http_only``, ``same_site`` and ``expires_ms`` (``None``: a session
        cookie)."""
        cookies: list[dict[str, Any]] = _json.loads(self._raw.cookies_json())
        return cookies

    def clear_cookies(self) -> None:
        """Empties the engine's cookie jar."""
        self._raw.clear_cookies()

    def prometheus(self) -> str:
        """The stats in the Prometheus text format."""
        return self._raw.prometheus()

    def diagnostics(self) -> dict[str, Any]:
        """The health report: pools, DNS cache, recent errors."""
        d: dict[str, Any] = _json.loads(self._raw.diagnostics_json())
        return d

    def on_dead_letter(self, callback: Callable[[DeadLetter], object]) -> None:
        """Calls ``callback`` with a :class:`DeadLetter` for each request that fails after every
        retry the policy allowed, on a Python thread of its own (``wirecore-dead-letters``),
        never on an engine thread; the thread ends when the client is closed. Letters wait in a
        queue of ``dead_letter.queue``; more are dropped (``stats()["dead_letter"]["dropped"]``).
        A callback that raises is reported through ``sys.excepthook``. Once per client."""
        if self._dead_letters:
            raise InvalidRequest(
                "on_dead_letter was already called on this client", "invalid_request"
            )
        listen(self._raw, callback)
        self._dead_letters = True

    def on_span(self, callback: Callable[[Span], object]) -> None:
        """Calls ``callback`` with a :class:`Span` for each finished request (``otel.enabled``;
        also exported to ``otel.endpoint`` when that is set), on a Python thread of its own
        (``wirecore-spans``), never on an engine thread. Spans wait in a queue of
        ``otel.callback_queue``; more are dropped (``stats()["otel"]["dropped"]``), so a slow
        callback never holds up a request. ``close()`` returns once the queued spans were
        handed to the callback. A callback that raises is reported through ``sys.excepthook``.
        Once per client; ``ConfigError`` when ``otel.enabled`` is false."""
        if self._spans is not None:
            raise InvalidRequest("on_span was already called on this client", "invalid_request")
        self._spans = _span.listen(self._raw, callback)

    def close_idle_connections(self) -> None:
        """Closes every idle pooled connection now (after a network change, or to rebalance);
        requests in flight and the client itself go on."""
        self._raw.close_idle_connections()


class Client(_BaseClient):
    """A blocking HTTP client; safe to share between threads (calls release the GIL)."""

    __slots__ = ()

    def _send(self, p: _Prepared, stream: bool) -> Response:
        if p.source is None:
            raw = self._raw.send(p.method, p.url, p.headers, p.body, stream, p.options or None)
        else:
            raw = self._call_streamed(p.method, p.url, p.headers, p.source, stream, p.options)
        return Response(raw, p.method)

    def _call_streamed(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]] | None,
        source: Any,
        stream: bool,
        options: dict[str, Any],
    ) -> _wirecore.RawResponse:
        """Starts the request, feeds its body from ``source`` on this thread, then waits."""
        if hasattr(source, "__aiter__") and not hasattr(source, "__iter__"):
            raise TypeError("an async iterable body needs AsyncClient")
        up = _wirecore.Upload()
        started = self._raw.start(up, method, url, headers, stream, options or None)
        try:
            _feed_sync(up, source)
        except BaseException:
            started.cancel()
            raise
        return started.wait()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamTypes = None,
        headers: HeaderTypes = None,
        content: ContentTypes = None,
        data: Mapping[str, Any] | None = None,
        files: FileTypes | None = None,
        json: Any = None,
        timeout: TimeoutTypes = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool | None = None,
        rate_limit_key: str | None = None,
        priority: PriorityTypes = None,
        follow_redirects: bool | None = None,
        redirect: RedirectTypes | None = None,
        max_redirects: int | None = None,
        cache: CacheModeTypes = None,
        balance_key: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Response:
        """Sends a request and reads the whole response.

        ``timeout`` is seconds for the whole request or a :class:`Timeout`; ``idempotent``
        overrides the method's retry safety; ``rate_limit_key`` is the key of
        ``rate_limit.scope = "key"``; ``priority`` is the RFC 9218 priority: an urgency 0-7,
        ``"highest"``/``"high"``/``"normal"``/``"low"``/``"lowest"`` or ``"u=1, i"``, sent as the
        ``Priority`` header (replacing one in ``headers``) and ordering requests waiting for a
        connection; without it a ``Priority`` header in ``headers`` goes unchanged.
        ``follow_redirects=False`` (as httpx) or ``redirect="manual"`` returns a 3xx as it is,
        ``redirect="error"`` raises :class:`TooManyRedirects` at a redirect; ``max_redirects``
        overrides the config's ``redirect.max`` for this request. ``cache`` is how the request
        uses the client's response cache, fetch's ``cache`` option: ``"default"``,
        ``"no-store"``, ``"reload"``, ``"no-cache"``, ``"force-cache"`` or ``"only-if-cached"``
        (a 504 when nothing is stored); see ``Response.cache_status``. ``balance_key`` is the key
        a ``consistent_hash`` service places the request by (ahead of the service's
        ``hash.header`` or ``hash.cookie``). ``traceparent`` and ``tracestate`` are the W3C trace
        context this request's span (config ``otel``) is a child of; without them the current
        OpenTelemetry context is used when ``opentelemetry-api`` is installed. With ``otel`` off
        they are sent as they are.
        """
        o = _redirects(
            _options(
                timeout,
                idempotent,
                rate_limit_key,
                priority,
                cache,
                balance_key,
                traceparent,
                tracestate,
            ),
            follow_redirects,
            redirect,
            max_redirects,
        )
        return self._send(
            _prepare(method, url, params, headers, content, data, files, json, auth, o), False
        )

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        params: ParamTypes = None,
        headers: HeaderTypes = None,
        content: ContentTypes = None,
        data: Mapping[str, Any] | None = None,
        files: FileTypes | None = None,
        json: Any = None,
        timeout: TimeoutTypes = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool | None = None,
        rate_limit_key: str | None = None,
        priority: PriorityTypes = None,
        follow_redirects: bool | None = None,
        redirect: RedirectTypes | None = None,
        max_redirects: int | None = None,
        cache: CacheModeTypes = None,
        balance_key: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Iterator[Response]:
        """Sends the request; the body is read through ``iter_bytes()`` inside the block."""
        o = _redirects(
            _options(
                timeout,
                idempotent,
                rate_limit_key,
                priority,
                cache,
                balance_key,
                traceparent,
                tracestate,
            ),
            follow_redirects,
            redirect,
            max_redirects,
        )
        r = self._send(
            _prepare(method, url, params, headers, content, data, files, json, auth, o), True
        )
        try:
            yield r
        finally:
            r.close()

    def get(self, url: str, **kw: Unpack[_Options]) -> Response:
        if not kw and url.__class__ is str and _otel_inject is _NO_OTEL:
            return Response(self._raw.send("GET", url), "GET")
        return self.request("GET", url, **kw)

    def head(self, url: str, **kw: Unpack[_Options]) -> Response:
        return self.request("HEAD", url, **kw)

    def options(self, url: str, **kw: Unpack[_Options]) -> Response:
        return self.request("OPTIONS", url, **kw)

    def delete(self, url: str, **kw: Unpack[_Options]) -> Response:
        return self.request("DELETE", url, **kw)

    def post(self, url: str, **kw: Unpack[_BodyOptions]) -> Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Unpack[_BodyOptions]) -> Response:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Unpack[_BodyOptions]) -> Response:
        return self.request("PATCH", url, **kw)

    def flush_telemetry(self) -> None:
        """Exports the finished OpenTelemetry spans and the ``http.client.request.duration``
        metric to ``otel.endpoint`` now, and returns once the collector answered (or the export
        failed: ``stats()["otel"]["dropped"]`` counts the spans lost). ``close()`` does this
        too; otherwise exports go every ``otel.export_interval_ms``."""
        self._raw.flush_telemetry()

    def close(self, timeout: float = 5.0) -> None:
        """Refuses new requests, waits up to ``timeout`` s for in-flight ones, closes idle ones."""
        self._raw.close(timeout)
        _span.join(self._spans, timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<wirecore.Client>"


class AsyncClient(_BaseClient):
    """An asyncio HTTP client; usable from any event loop, including repeated ``asyncio.run``."""

    __slots__ = ()

    async def _send(self, p: _Prepared, stream: bool) -> Response:
        if p.source is None:
            raw = await self._call(p.method, p.url, p.headers, p.body, stream, p.options)
        else:
            raw = await self._call_streamed(p.method, p.url, p.headers, p.source, stream, p.options)
        return Response(raw, p.method)

    async def _call(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]] | None,
        body: bytes | None,
        stream: bool,
        options: dict[str, Any],
    ) -> _wirecore.RawResponse:
        call = self._raw.call_async(
            _completer(asyncio.get_running_loop()),
            method,
            url,
            headers,
            body,
            stream,
            options or None,
        )
        try:
            raw: _wirecore.RawResponse = await call
        except BaseException:
            call.cancel()
            raise
        return raw

    async def _call_streamed(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]] | None,
        source: Any,
        stream: bool,
        options: dict[str, Any],
    ) -> _wirecore.RawResponse:
        """Starts the request and feeds its body from ``source`` in a task on this loop."""
        up = _wirecore.Upload()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_wirecore.RawResponse] = loop.create_future()
        pending = self._raw.send_async(
            _completer(loop), fut, method, url, headers, None, stream, options or None, up
        )
        feeder = loop.create_task(_feed_async(up, source))
        try:
            raw = await fut
        except BaseException as e:
            pending.cancel()
            failed = _failure(feeder)
            if failed is not None:
                # The source failed first: that is the error to report, not the aborted body.
                raise failed from e
            feeder.cancel()
            raise
        if not feeder.done():
            feeder.cancel()  # answered before the whole body was read
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        failed = _failure(feeder)
        if failed is not None:
            raise failed
        return raw

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamTypes = None,
        headers: HeaderTypes = None,
        content: ContentTypes = None,
        data: Mapping[str, Any] | None = None,
        files: FileTypes | None = None,
        json: Any = None,
        timeout: TimeoutTypes = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool | None = None,
        rate_limit_key: str | None = None,
        priority: PriorityTypes = None,
        follow_redirects: bool | None = None,
        redirect: RedirectTypes | None = None,
        max_redirects: int | None = None,
        cache: CacheModeTypes = None,
        balance_key: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Response:
        """Sends a request and reads the whole response; see :meth:`Client.request`."""
        o = _redirects(
            _options(
                timeout,
                idempotent,
                rate_limit_key,
                priority,
                cache,
                balance_key,
                traceparent,
                tracestate,
            ),
            follow_redirects,
            redirect,
            max_redirects,
        )
        p = _prepare(method, url, params, headers, content, data, files, json, auth, o)
        return await self._send(p, False)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        params: ParamTypes = None,
        headers: HeaderTypes = None,
        content: ContentTypes = None,
        data: Mapping[str, Any] | None = None,
        files: FileTypes | None = None,
        json: Any = None,
        timeout: TimeoutTypes = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool | None = None,
        rate_limit_key: str | None = None,
        priority: PriorityTypes = None,
        follow_redirects: bool | None = None,
        redirect: RedirectTypes | None = None,
        max_redirects: int | None = None,
        cache: CacheModeTypes = None,
        balance_key: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> AsyncIterator[Response]:
        """Sends the request; the body is read through ``aiter_bytes()`` inside the block."""
        o = _redirects(
            _options(
                timeout,
                idempotent,
                rate_limit_key,
                priority,
                cache,
                balance_key,
                traceparent,
                tracestate,
            ),
            follow_redirects,
            redirect,
            max_redirects,
        )
        r = await self._send(
            _prepare(method, url, params, headers, content, data, files, json, auth, o), True
        )
        try:
            yield r
        finally:
            r.close()

    async def get(self, url: str, **kw: Unpack[_Options]) -> Response:
        if not kw and url.__class__ is str and _otel_inject is _NO_OTEL:
            # The hot path, inlined: one coroutine frame per request.
            # The call is awaited directly: the completer's drain resumes this task itself.
            call = self._raw.call_async(_completer(asyncio.get_running_loop()), "GET", url)
            try:
                raw = await call
            except BaseException:
                call.cancel()
                raise
            return Response(raw, "GET")
        return await self.request("GET", url, **kw)

    async def head(self, url: str, **kw: Unpack[_Options]) -> Response:
        return await self.request("HEAD", url, **kw)

    async def options(self, url: str, **kw: Unpack[_Options]) -> Response:
        return await self.request("OPTIONS", url, **kw)

    async def delete(self, url: str, **kw: Unpack[_Options]) -> Response:
        return await self.request("DELETE", url, **kw)

    async def post(self, url: str, **kw: Unpack[_BodyOptions]) -> Response:
        return await self.request("POST", url, **kw)

    async def put(self, url: str, **kw: Unpack[_BodyOptions]) -> Response:
        return await self.request("PUT", url, **kw)

    async def patch(self, url: str, **kw: Unpack[_BodyOptions]) -> Response:
        return await self.request("PATCH", url, **kw)

    async def flush_telemetry(self) -> None:
        """Exports the finished OpenTelemetry spans and the ``http.client.request.duration``
        metric to ``otel.endpoint`` now, and returns once the collector answered (or the export
        failed: ``stats()["otel"]["dropped"]`` counts the spans lost). ``aclose()`` does this
        too; otherwise exports go every ``otel.export_interval_ms``."""
        raw = self._raw
        await _await(lambda c, f: raw.flush_telemetry_async(c, f))

    async def aclose(self, timeout: float = 5.0) -> None:
        """Refuses new requests, waits up to ``timeout`` s for in-flight ones, closes idle ones."""
        raw = self._raw
        await _await(lambda c, f: raw.close_async(c, f, timeout))
        if self._spans is not None:
            await asyncio.get_running_loop().run_in_executor(None, _span.join, self._spans, timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return "<wirecore.AsyncClient>"
