"""httpx transports that run on the wirecore engine (httpx is an optional dependency).

    httpx.AsyncClient(transport=wirecore.httpx.AsyncTransport())

httpx keeps its API, redirects, auth and cookies (its own jar: leave the engine's
``cookies.enabled`` off here); the engine does the connections, pooling, HTTP/2, decompression,
retries and limits. Redirects are left to httpx (the transport's engine
client gets ``redirect.max = 0`` unless the config says otherwise). Engine errors are raised as
the matching ``httpx`` exceptions, chained to the ``wirecore`` error.

Timeouts: httpx's ``connect``, ``read`` and ``pool`` timeouts (client-wide or per request) become
the engine's per-request overrides of ``timeouts.connect_ms``, ``read_idle_ms`` and
``pool_acquire_ms``; httpx's ``write`` timeout has no engine counterpart and is ignored. With
``timeout=None`` on the httpx client the engine config's timeouts apply. Streamed request bodies
(generators, files) are streamed to the engine, not read into memory first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn

import httpx

from ._client import AsyncClient, Client, Response
from .exceptions import WirecoreError

__all__ = ["AsyncTransport", "Transport"]

# httpx adds these; the engine sets its own (and decodes bodies itself).
_DROP = frozenset(
    {"host", "connection", "content-length", "transfer-encoding", "accept-encoding", "keep-alive"}
)

_ERRORS: dict[str, type[httpx.TransportError]] = {
    "timeout.connect": httpx.ConnectTimeout,
    "timeout.tls": httpx.ConnectTimeout,
    "timeout.read": httpx.ReadTimeout,
    "timeout.total": httpx.ReadTimeout,
    "timeout.pool": httpx.PoolTimeout,
    "dns": httpx.ConnectError,
    "connect": httpx.ConnectError,
    "tls": httpx.ConnectError,
    "io": httpx.ReadError,
    "protocol": httpx.RemoteProtocolError,
    "invalid_url": httpx.UnsupportedProtocol,
    "invalid_header": httpx.LocalProtocolError,
    "invalid_request": httpx.LocalProtocolError,
}


def _config(config: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(config, str):
        import json

        config = json.loads(config)
    merged: dict[str, Any] = {**(config or {}), **kwargs}
    merged.setdefault("redirect", {"max": 0})
    return merged


def _convert(e: WirecoreError, request: httpx.Request) -> Exception:
    if e.code == "decode":
        return httpx.DecodingError(str(e), request=request)
    if e.code == "too_many_redirects":
        return httpx.TooManyRedirects(str(e), request=request)
    cls = _ERRORS.get(e.code)
    if cls is None:
        return e  # circuit_open, rate_limited, body_too_large, ...: no httpx equivalent
    return cls(str(e), request=request)


def _raise(e: WirecoreError, request: httpx.Request) -> NoReturn:
    converted = _convert(e, request)
    if converted is e:
        raise e
    raise converted from e


def _headers(request: httpx.Request) -> list[tuple[str, str]]:
    return [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in request.headers.raw
        if k.lower().decode("latin-1") not in _DROP
    ]


def _phases(request: httpx.Request) -> dict[str, Any]:
    t = request.extensions.get("timeout")
    if not t:
        return {}
    phases = (t.get("connect"), t.get("read"), t.get("pool"))
    return {"phases": phases} if phases != (None, None, None) else {}


def _hop(request: httpx.Request) -> dict[str, Any]:
    """The engine's ``default_headers`` stay with the origin a redirect chain started at, as
    they do when the engine follows redirects itself. httpx copies a request's extensions to
    the next hop, so the first hop records its origin there and a later hop sees whether the
    chain has left it (once left, also on the way back); ``redirect.forward_headers`` still
    applies."""
    ext = request.extensions
    here = (request.url.scheme, request.url.host, request.url.port)
    first = ext.setdefault("wirecore.origin", here)
    if first != here:
        ext["wirecore.left_origin"] = True
    return {"default_headers": False} if ext.get("wirecore.left_origin") else {}


def _is_read(request: httpx.Request) -> bool:
    """Whether the body is in memory already (bytes content, or read by httpx)."""
    return isinstance(request.stream, httpx.ByteStream) or hasattr(request, "_content")


def _response(r: Response, stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> httpx.Response:
    version = r.http_version
    return httpx.Response(
        status_code=r.status_code,
        headers=r.headers.multi_items(),
        stream=stream,
        extensions={
            "http_version": version.encode(),
            "reason_phrase": r.reason_phrase.encode(),
        },
    )


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, r: Response, request: httpx.Request) -> None:
        self._r = r
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._r.iter_bytes()
        except WirecoreError as e:
            _raise(e, self._request)

    def close(self) -> None:
        self._r.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, r: Response, request: httpx.Request) -> None:
        self._r = r
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._r.aiter_bytes():
                yield chunk
        except WirecoreError as e:
            _raise(e, self._request)

    async def aclose(self) -> None:
        self._r.close()


class Transport(httpx.BaseTransport):
    """``httpx.Client(transport=Transport())``: blocking, GIL released while waiting.

    Takes an existing :class:`wirecore.Client`, or the engine config (dict/JSON/keywords).
    """

    def __init__(self, client_or_config: Client | Any = None, /, **kwargs: Any) -> None:
        if isinstance(client_or_config, Client):
            if kwargs:
                raise TypeError("pass a wirecore.Client or a config, not both")
            self.client = client_or_config
        else:
            self.client = Client(_config(client_or_config, kwargs))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        client = self.client
        method, url, headers = request.method, str(request.url), _headers(request)
        kw = {**_phases(request), **_hop(request)}
        try:
            if _is_read(request):
                body = request.read() or None
                rr = client._raw.send(method, url, headers, body, True, kw or None)
            else:
                rr = client._call_streamed(method, url, headers, request.stream, True, kw)
        except WirecoreError as e:
            _raise(e, request)
        r = Response(rr, method)
        return _response(r, _SyncBody(r, request))

    def close(self) -> None:
        self.client.close()


class AsyncTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=AsyncTransport())``: asyncio, cancellable.

    Takes an existing :class:`wirecore.AsyncClient`, or the engine config (dict/JSON/keywords).
    """

    def __init__(self, client_or_config: AsyncClient | Any = None, /, **kwargs: Any) -> None:
        if isinstance(client_or_config, AsyncClient):
            if kwargs:
                raise TypeError("pass a wirecore.AsyncClient or a config, not both")
            self.client = client_or_config
        else:
            self.client = AsyncClient(_config(client_or_config, kwargs))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        client = self.client
        method, url, headers = request.method, str(request.url), _headers(request)
        kw = {**_phases(request), **_hop(request)}
        try:
            if _is_read(request):
                body = await request.aread() or None
                rr = await client._call(method, url, headers, body, True, kw)
            else:
                rr = await client._call_streamed(method, url, headers, request.stream, True, kw)
        except WirecoreError as e:
            _raise(e, request)
        r = Response(rr, method)
        return _response(r, _AsyncBody(r, request))

    async def aclose(self) -> None:
        await self.client.aclose()
