"""Where the host's log records go: stderr, timestamped, as text or one JSON object a line.

Warnings and errors are written by default, so a failed worker round or a job given up is
never lost; ``--log-level INFO`` adds each job's progress. ``--log-format json`` suits log
collectors (journald, Loki, CloudWatch): one object a line with time, level, logger, message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from host.cli.terminal import clean

_handler: logging.Handler | None = None


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = f"{stamp} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return clean(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a redirected pipe)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _RetriesAreDetail(logging.Filter):
    """urllib3 logs each retry it makes (``Retrying (Retry(total=4, ...)) after connection broken
    by ...``) as a WARNING; the toolkit retries on purpose and reports the outcome in one line
    (the job's log, the command's answer), so these are DEBUG detail. Its other warnings stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith("Retrying ("):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"  # the handlers' levels decide
        return True


_retries_are_detail = _RetriesAreDetail()


def setup(level: str = "WARNING", fmt: str = "text") -> None:
    """Send log records of ``level`` and above (host and plugins) to stderr; safe to call again."""
    global _handler
    pool_log = logging.getLogger("urllib3.connectionpool")
    if _retries_are_detail not in pool_log.filters:
        pool_log.addFilter(_retries_are_detail)
    root = logging.getLogger()
    if _handler is None:
        _handler = _Stderr()
        root.addHandler(_handler)
    _handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter())
    _handler.setLevel(level.upper())
    if root.level > _handler.level or root.level == logging.NOTSET:
        root.setLevel(_handler.level)


def access_log(fmt: str = "text") -> None:
    """Write the web admin's access lines (``cartplugin.access``, INFO) whatever the log level."""
    logger = logging.getLogger("cartplugin.access")
    handler = next((h for h in logger.handlers if isinstance(h, _Stderr)), None)
    if handler is None:
        handler = _Stderr()
        logger.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter())
    logger.setLevel(logging.INFO)
    logger.propagate = False
