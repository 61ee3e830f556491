"""Print the gateway's OpenAPI schema as JSON, for the page's generated API types.

`python -m gateway.openapi_json web/openapi.json` writes it to a file. The schema is the
app's own (`app.openapi()`); nothing connects, so no database or Redis is needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.settings import Settings
from gateway.app import create_app


def schema() -> dict[str, object]:
    return create_app(Settings()).openapi()


def main(argv: list[str]) -> int:
    text = json.dumps(schema(), indent=1, sort_keys=True) + "\n"
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
