"""Secrets kept out of every log line: stream tokens and API keys.

A job's event stream and audio are opened with `?token=...` (EventSource and <audio> send
no headers), and such a token opens them for minutes: written into an access log, it
would be good to whoever reads the log. So every log record of this process, uvicorn's
access and error logs and the app's own alike, has in its message and arguments

- any `...token=<value>` and `api_key=<value>` (a query parameter, a form field) as
  `token=[redacted]`;
- any API key (`scr_...`) and `Bearer <value>` as `scr_[redacted]`, `Bearer [redacted]`.

It is done where a record is made (`logging.setLogRecordFactory`), not by a filter on some
logger or handler: a logger's filter does not see what its children's records propagate
to it, and a handler added later (a log_config, a test's capture) would have none.
`install()` is called where the server is configured (gateway.http.server), which every way of
serving goes through; calling it again changes nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRETS = (
    (re.compile(r"(?i)(\w*token=|api[_-]?key=)[^&\s\"'#;,]+"), r"\1[redacted]"),
    (re.compile(r"\bscr_[A-Za-z0-9_-]+"), "scr_[redacted]"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes | int | float) or value is None:
        return value
    text = str(value)  # what %s would show (a URL object, an exception)
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def redact_record(record: logging.LogRecord) -> None:
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redacted(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _redacted(v) for k, v in record.args.items()}


def install() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
