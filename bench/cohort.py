"""Build the s-norm cohort shipped for the packaged speaker encoder (stages/cohort.py).

    python -m bench.cohort [--check]

One L2-normalised embedding per impostor voice, made from dev-set recordings that hold
nobody of the identification protocol's test recordings (bench/identify.py: the AMI
excerpts trn00-03 and trn06-09, the LibriSpeech speakers and their mixes): the AMI
excerpts trn04 and trn05 (far-field meeting speech: each person's clean turns, from the
reference RTTM), FLEURS English and French, JFK, the Picovoice clips and three misc clips.
Licences: CC-BY-4.0 (AMI, FLEURS), Apache-2.0 (Picovoice test data), public domain (JFK),
MIT / BSD-3-Clause (misc test data); tests/data/audio/manifest.tsv per file. Writes
`stages/data/<name>.npy` and its line in `stages/data/cohorts.tsv`. `--check` only says
whether the shipped file matches what the sources give now.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench._common import AUDIO  # noqa: E402

# (voice, files); AMI voices are (voice, "ami/<file>:<speaker>")
SOURCES: list[tuple[str, list[str]]] = [
    ("ami-MEE075", ["ami/trn04.flac:MEE075"]),
    ("ami-MEO074", ["ami/trn04.flac:MEO074"]),
    ("ami-MEE076", ["ami/trn04.flac:MEE076"]),
    ("ami-FEE078", ["ami/trn05.flac:FEE078"]),
    *[(f"fleurs-{lang}-{i:03d}", [f"fleurs/{lang}/fleurs-{lang}-{i:03d}.ogg"])
      for lang in ("en", "fr") for i in range(5)],
    ("jfk", ["jfk/jfk.flac"]),
    *[(f"cheetah-{lang}", [f"picovoice/cheetah/test_{lang}.wav",
                           f"picovoice/cheetah/test_{lang}_norm.wav"])
      for lang in ("de", "en", "es", "fr", "it", "pt")],
    ("eagle-speaker-1", [f"picovoice/eagle/speaker_1_utt_{i}.wav" for i in (1, 2)]
     + ["picovoice/eagle/speaker_1_test_utt.wav"]),
    ("eagle-speaker-2", ["picovoice/eagle/speaker_2_test_utt.wav"]),
    ("misc-english", ["misc/english.wav"]),
    ("misc-french", ["misc/french.aiff"]),
    ("misc-multilingual", ["misc/multilingual.mp3"]),
]  # fmt: skip
# The people of the protocol's test recordings: a cohort voice must be none of them.
PROTOCOL_FILES = ("trn00", "trn01", "trn02", "trn03", "trn06", "trn07", "trn08", "trn09")
NAME = "campp-cohort"


def voice_audio(spec: str) -> Any:
    from stages import voice
    from stages.calibration import _load
    from stages.engines.base import SAMPLE_RATE

    if ":" in spec:  # an AMI speaker's clean turns
        from core.artifacts import Turn

        path, speaker = spec.split(":")
        audio = _load(AUDIO / path)
        turns = [
            Turn(start=float(p[3]), end=float(p[3]) + float(p[4]), speaker=p[7])
            for p in (
                ln.split() for ln in (AUDIO / path).with_suffix(".rttm").read_text().splitlines()
            )
            if len(p) >= 8
        ]
        spans = voice.clean_spans(turns, speaker)
        return np.concatenate(
            [audio[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] for s, e in spans]
        )
    audio = _load(AUDIO / spec)
    regions = voice.speech_regions(audio)
    return np.concatenate([audio[s:e] for s, e in regions])


def build() -> tuple[str, np.ndarray]:
    from core.settings import Settings
    from stages.engines.base import l2_normalise
    from stages.engines.models import ModelManager

    for voice_name, files in SOURCES:
        assert not any(p in f for f in files for p in PROTOCOL_FILES), voice_name
    encoder = ModelManager(Settings()).encoder()
    rows = []
    for voice_name, files in SOURCES:
        audio = np.concatenate([voice_audio(f) for f in files])
        rows.append(l2_normalise(encoder.embed(audio)))
        print(f"  {voice_name}: {len(audio) / 16000:.1f} s of speech", file=sys.stderr)
    return encoder.model_id, np.stack(rows).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    from stages.cohort import COHORT_DIR, MANIFEST, cohort_file

    p = argparse.ArgumentParser(prog="python -m bench.cohort", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the shipped file only")
    args = p.parse_args(argv)
    model, cohort = build()
    if args.check:
        shipped = cohort_file(model)
        if shipped is None or not shipped.exists():
            print(f"no cohort shipped for {model}")
            return 1
        diff = float(np.abs(np.load(shipped) - cohort).max())
        print(f"{shipped.name}: largest difference {diff:.2e}")
        return 0 if diff < 1e-3 else 1
    name = f"{NAME}.npy"
    np.save(COHORT_DIR / name, cohort)
    rows = []
    if MANIFEST.exists():
        with open(MANIFEST, encoding="utf-8", newline="") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if r["model"] != model]
    rows.append(
        {
            "model": model,
            "file": name,
            "voices": str(len(cohort)),
            "built_from": "tests/data/audio: ami trn04+trn05 speakers, fleurs en+fr, jfk,"
            " picovoice cheetah+eagle, misc english/french/multilingual (bench/cohort.py)",
            "license": "CC-BY-4.0 (AMI, FLEURS); Apache-2.0 (Picovoice); public domain (JFK);"
            " MIT, BSD-3-Clause (misc)",
        }
    )
    with open(MANIFEST, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {COHORT_DIR / name} ({len(cohort)} voices) for {model}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
