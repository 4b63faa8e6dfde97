"""Structured logs: one JSON object per line through the ``logging`` module.

Log events carry operation names, principals, counts and paths; never a
value. As a second line of defence, fields whose names suggest a value
(``value``, ``password``, ``token``...) are replaced by ``"<redacted>"``.

    log = get_logger("backup")
    log_event(log, "backup_written", path=str(path), rows=n)
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import IO, Any

ROOT = "vault_core"
REDACTED = "<redacted>"
_SENSITIVE = frozenset({"value", "values", "password", "passphrase", "secret", "secret_value", "token", "key",
                        "master_key", "cookie", "plaintext", "authorization"})
_HANDLER_FLAG = "_vault_json_handler"


def _safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return REDACTED  # bytes in a log are most likely key or value material
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    if isinstance(value, dict):
        return redact(value)
    return str(value)


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``fields`` fit for a log line."""
    return {str(k): (REDACTED if str(k).lower() in _SENSITIVE else _safe(v)) for k, v in fields.items()}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "event", ...fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        doc.update(redact(getattr(record, "fields", None) or {}))
        if record.exc_info and record.exc_info[0] is not None:
            # the type only: exception messages are ours, but a third party's might echo input
            doc["exception"] = record.exc_info[0].__name__
        return json.dumps(doc, ensure_ascii=False, default=str)


def get_logger(name: str) -> logging.Logger:
    """A logger under ``vault_core`` (``get_logger("backup")`` → ``vault_core.backup``)."""
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event; ``fields`` become top-level JSON keys."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


def configure_logging(level: int | str = logging.WARNING, stream: IO[str] | None = None) -> logging.Handler:
    """Send ``vault_core`` logs as JSON lines to ``stream`` (stderr); idempotent."""
    root = logging.getLogger(ROOT)
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_FLAG, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_FLAG, True)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    root.propagate = False
    return handler
