"""Calibrate the identification threshold for the speaker-embedding model in use.

    python -m bench.calibrate [--audio tests/data/audio/librispeech] [--target-far 0.01]
        [--store] [--database-url URL] [--out bench/results/calibration.json]

The calibration itself is stages/calibration.py, shared with `scribe calibrate`: each
speaker folder under `--audio` (LibriSpeech layout: `<speaker>/<utterance>.flac`) is
enrolled from two utterances (those named in `mix/enrollment.tsv` when it lists them, else
the first two), exactly as `POST /v1/speakers` does (identify.enroll_embedding). Every other
utterance is scored by cosine against every voiceprint: its own speaker's score is a
same-speaker score, the others are different-speaker scores. The threshold is the lowest
one whose false-accept rate is at most `--target-far`, where a false accept is (default,
`--rule open-set`) a voice whose best score against the *other* speakers' prints passes,
i.e. a stranger named after someone enrolled, or (`--rule pairwise`) one wrong pair passing.
Open-set is the default because identify compares each voice with every print: on
meeting_4spk a non-enrolled speaker scored 0.371 against an enrolled print, above the
pairwise-calibrated 0.363, and was left unnamed only because that print went to its owner.

The result is written as JSON and, with `--store`, into the `calibrations` table
(migrations/004_calibration.sql) of the database in the settings (SCRIBE_DATABASE_URL) or
`--database-url`, keyed by the encoder's model id. The identify stage then uses it for
that model unless a job or SCRIBE_IDENTIFY_THRESHOLD overrides it; another model (new
weights) has no calibration until this is run again for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from bench._common import RESULTS, write_json
from stages.calibration import DEFAULT_AUDIO_DIR, calibrate, markdown, save

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")


async def store(database_url: str, model: str, result: dict[str, Any]) -> None:
    """Store `result` (a `calibrate` result, as bench/results/calibration.json holds it)
    for `model` in the database at `database_url`, migrated first."""
    from storage.calibration import CalibrationStore
    from storage.db import create_pool, migrate

    pool = await create_pool(database_url, max_size=1)
    try:
        await migrate(pool)
        await save(CalibrationStore(pool), {**result, "model": model})
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.calibrate", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--audio",
        type=Path,
        default=DEFAULT_AUDIO_DIR,
        help="folder of speaker folders of utterances",
    )
    p.add_argument("--target-far", type=float, default=0.01)
    p.add_argument(
        "--rule",
        choices=("pairwise", "open-set"),
        default="open-set",
        help="impostor scores: every wrong pair, or each voice's best wrong print",
    )
    p.add_argument(
        "--per-speaker", type=int, default=0, help="score at most N utterances per speaker (0: all)"
    )
    p.add_argument(
        "--store", action="store_true", help="write the threshold into the calibrations table"
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="database for --store (default: the settings' database_url)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "calibration.json")
    args = p.parse_args(argv)

    result = calibrate(args.audio, args.target_far, args.per_speaker, args.rule)
    result["markdown"] = markdown(result)
    write_json(args.out, result)
    print(result["markdown"])
    if args.store:
        from core.settings import Settings

        url = args.database_url or Settings().database_url
        if not url:
            print("--store needs --database-url or SCRIBE_DATABASE_URL", file=sys.stderr)
            return 2
        asyncio.run(store(url, result["model"], result))
        print(f"stored for {result['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
