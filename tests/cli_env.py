"""The environment the CLI tests run `scribe` in: none of this shell's SCRIBE_ settings and
no forced colour (FORCE_COLOR in a CI shell would put escape codes in what the tests read);
the terminal width is the caller's (COLUMNS passes through unless the test sets one)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLOUR_VARS = ("FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SCRIBE_") and k not in COLOUR_VARS
    }
    env.update(NO_COLOR="1", PYTHONPATH=str(REPO), **extra)
    return env
