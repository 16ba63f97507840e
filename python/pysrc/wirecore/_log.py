"""The engine's events for the standard ``logging`` module: after :func:`enable_logging` the
engine queues them (connections opened and closed, retries, breaker state changes, DNS
refreshes, redirects, waits for a connection) and a thread of this module hands each to the
``wirecore`` logger, never on an engine thread. Off by default."""

from __future__ import annotations

import atexit
import json
import logging
import threading

from . import _wirecore

logger = logging.getLogger("wirecore")

TRACE = 5
_LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}
# How long the thread waits for records before checking whether it should stop.
_SLICE = 0.2
_lock = threading.Lock()
_thread: threading.Thread | None = None
_enabled = False
_exiting = threading.Event()


def _engine_level(level: int | str) -> str:
    if isinstance(level, str):
        return level.lower()
    for name, number in (("trace", TRACE), ("debug", logging.DEBUG), ("info", logging.INFO)):
        if level <= number:
            return name
    return "warn" if level <= logging.WARNING else "error"


def enable_logging(level: int | str = logging.DEBUG) -> None:
    """Sends the engine's events at ``level`` and above (a ``logging`` level, or ``"error"``,
    ``"warn"``, ``"info"``, ``"debug"``, ``"trace"``) to the ``wirecore`` logger, for every
    client of the process. Each record's fields are attributes: ``record.event``
    (``"connection_opened"``, ``"retry"`` ...), ``record.origin``, ``record.attempt``,
    ``record.error_code`` ...; at most 4096 wait for the thread, more are dropped."""
    global _thread, _enabled
    _wirecore._log_enable(_engine_level(level))
    with _lock:
        _enabled = True
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_deliver, name="wirecore-log", daemon=True)
            _thread.start()


def disable_logging() -> None:
    """Stops queueing the engine's events (the default); records not yet handed to the logger
    are dropped."""
    global _enabled
    _wirecore._log_enable("off")
    with _lock:
        _enabled = False
    while _wirecore._log_next(0):
        pass


def _deliver() -> None:
    global _thread
    while not _exiting.is_set():
        batch = _wirecore._log_next(_SLICE)
        if not batch:
            with _lock:
                if not _enabled:
                    _thread = None
                    return
            continue
        for level, target, message, fields_json, time_ms in batch:
            if not _enabled:
                break
            levelno = _LEVELS.get(level, logging.DEBUG)
            if not logger.isEnabledFor(levelno):
                continue
            record = logger.makeRecord(logger.name, levelno, target, 0, message, (), None)
            record.created = time_ms / 1000
            record.msecs = time_ms % 1000
            for key, value in json.loads(fields_json).items():
                # A field never replaces one of LogRecord's own attributes.
                setattr(record, key if key not in record.__dict__ else f"wirecore_{key}", value)
            logger.handle(record)


@atexit.register
def _stop() -> None:
    # Before the interpreter finalizes: a thread blocked in the engine must not come back to
    # take the GIL afterwards.
    _exiting.set()
    t = _thread
    if t is not None:
        t.join(timeout=5)
