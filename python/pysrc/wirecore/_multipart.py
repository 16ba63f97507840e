"""``multipart/form-data`` bodies for ``files=`` (RFC 7578), streamed from files.

Fields and file parts become a list of segments: bytes, and file objects read in chunks while
the engine sends. When every file's size is known the body gets a Content-Length; otherwise it
goes out chunked. Bodies made only of bytes are sent whole.
"""

from __future__ import annotations

import io
import mimetypes
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Union

#: ``{"name": file}``, or ``{"name": (filename, file_or_bytes[, content_type])}``, or a list of
#: ``(name, ...)`` pairs to repeat a name.
FileContent = Union[IO[bytes], bytes, str]
FileValue = Union[
    FileContent,
    tuple[Union[str, None], FileContent],
    tuple[Union[str, None], FileContent, Union[str, None]],
]
FileTypes = Union[Mapping[str, FileValue], Sequence[tuple[str, FileValue]]]

_CHUNK = 64 * 1024


def _quote(s: str) -> str:
    # WHATWG's escaping for names in multipart headers.
    return s.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _pairs(x: Any, what: str) -> list[tuple[str, Any]]:
    if isinstance(x, Mapping):
        items = list(x.items())
    elif isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        items = list(x)
    else:
        raise TypeError(f"{what} must be a mapping or a list of pairs, not {type(x).__name__}")
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"{what} entries must be (name, value) pairs with str names")
    return items


def _file_length(f: Any) -> int | None:
    """Bytes left in a binary in-memory or regular file, or None when unknown."""
    try:
        if isinstance(f, io.BytesIO):
            return len(f.getbuffer()) - f.tell()
        if not isinstance(f, (io.RawIOBase, io.BufferedIOBase)):
            return None  # text files: characters, not bytes
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        return max(st.st_size - f.tell(), 0)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


class Multipart:
    """An encoded form: ``content_type``, ``length`` (None when unknown) and the segments."""

    def __init__(self, data: Mapping[str, Any] | None, files: FileTypes) -> None:
        self.boundary = os.urandom(16).hex()
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self.segments: list[bytes | IO[bytes]] = []
        dash = f"--{self.boundary}\r\n".encode()
        for name, value in _pairs(data or {}, "data"):
            for v in value if isinstance(value, (list, tuple)) else [value]:
                head = f'Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
                body = v if isinstance(v, bytes) else str(v).encode()
                self.segments += [dash + head.encode() + body + b"\r\n"]
        for name, value in _pairs(files, "files"):
            filename, content, ctype = self._file(name, value)
            head = f'Content-Disposition: form-data; name="{_quote(name)}"'
            if filename is not None:
                head += f'; filename="{_quote(filename)}"'
            head += f"\r\nContent-Type: {ctype}\r\n\r\n"
            self.segments += [dash + head.encode(), content, b"\r\n"]
        self.segments.append(f"--{self.boundary}--\r\n".encode())
        self.length: int | None = 0
        for s in self.segments:
            n = len(s) if isinstance(s, bytes) else _file_length(s)
            self.length = None if n is None or self.length is None else self.length + n

    @staticmethod
    def _file(name: str, value: Any) -> tuple[str | None, bytes | IO[bytes], str]:
        ctype: str | None = None
        if isinstance(value, tuple):
            if len(value) not in (2, 3):
                raise TypeError(f"files[{name!r}] must be (filename, content[, content_type])")
            filename, content = value[0], value[1]
            if len(value) == 3:
                ctype = value[2]
        else:
            content = value
            raw = getattr(value, "name", None)
            filename = os.path.basename(raw) if isinstance(raw, str) else None
        if isinstance(content, str):
            content = content.encode()
        elif not (isinstance(content, bytes) or hasattr(content, "read")):
            raise TypeError(
                f"files[{name!r}] content must be bytes, str or a binary file, "
                f"not {type(content).__name__}"
            )
        if filename is None and not isinstance(value, tuple):
            filename = "upload"
        if ctype is None:
            guessed = mimetypes.guess_type(filename)[0] if filename else None
            ctype = guessed or "application/octet-stream"
        return filename, content, ctype

    def whole(self) -> bytes | None:
        """The body as bytes when no part is a file."""
        if all(isinstance(s, bytes) for s in self.segments):
            return b"".join(s for s in self.segments if isinstance(s, bytes))
        return None

    def __iter__(self) -> Iterator[bytes]:
        for s in self.segments:
            if isinstance(s, bytes):
                yield s
                continue
            while True:
                chunk = s.read(_CHUNK)
                if not chunk:
                    break
                yield chunk if isinstance(chunk, bytes) else bytes(chunk)
