"""httpx transports that run on the wirecore engine (httpx is an optional dependency).

    httpx.AsyncClient(transport=wirecore.httpx.AsyncTransport())

httpx keeps its API, redirects, auth and cookies; the engine does the connections, pooling,
HTTP/2, decompression, retries and limits. Redirects are left to httpx (the transport's engine
client gets ``redirect.max = 0`` unless the config says otherwise). Engine errors are raised as
the matching ``httpx`` exceptions, chained to the ``wirecore`` error. Per-request timeouts come
from the engine config (``timeouts.*``); httpx's timeout extension is not mapped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn

import httpx

from ._client import AsyncClient, Client, Response, _await
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
        body = request.read()
        raw = self.client._raw
        try:
            r = Response(
                raw.send(
                    request.method,
                    str(request.url),
                    _headers(request),
                    body or None,
                    None,
                    True,
                ),
                request.method,
            )
        except WirecoreError as e:
            _raise(e, request)
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
        body = await request.aread()
        raw = self.client._raw
        method, url, headers = request.method, str(request.url), _headers(request)
        try:
            rr = await _await(
                lambda c, f: raw.send_async(c, f, method, url, headers, body or None, None, True)
            )
        except WirecoreError as e:
            _raise(e, request)
        r = Response(rr, method)
        return _response(r, _AsyncBody(r, request))

    async def aclose(self) -> None:
        await self.client.aclose()
