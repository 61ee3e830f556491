"""`scribe calibrate`: the threshold that names a speaker, measured on labelled speech and
stored for the embedding model in use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import err, fail, out, shown, with_database
from core.settings import Settings

if TYPE_CHECKING:
    import asyncpg

app = typer.Typer()


@app.command()
def calibrate(
    audio: Annotated[
        Path | None,
        typer.Option(
            "--audio",
            metavar="DIR",
            file_okay=False,
            help="Folder of speaker folders, each holding three or more .flac or .wav"
            " utterances of that one person (LibriSpeech layout). An enrollment.tsv"
            " (columns speaker, utterance) there or in ../mix/ chooses the enrollment"
            " clips; otherwise each speaker's first two are used.",
            show_default="tests/data/audio/librispeech in a source checkout, as bench uses",
        ),
    ] = None,
    target_far: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Highest acceptable false-accept rate: the share of impostor scores that"
            " may pass.",
        ),
    ] = 0.01,
    rule: Annotated[
        Literal["open-set", "pairwise"],
        typer.Option(
            help="Impostor scores: 'open-set' (each voice's best score against the other"
            " speakers' prints, as when a stranger is in a meeting) or 'pairwise' (every"
            " wrong voice-print pair).",
        ),
    ] = "open-set",
    per_speaker: Annotated[
        int, typer.Option(min=0, help="Score at most N utterances per speaker (0: all)")
    ] = 0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and show the threshold; store nothing")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Also write the whole result (every score) here as JSON"),
    ] = None,
) -> None:
    """Calibrate the threshold that names a speaker, for the embedding model in use.

    Each speaker folder is enrolled from two utterances exactly as `scribe speakers enroll`
    does, every other utterance is scored against every voiceprint, and the threshold is
    the lowest whose false-accept rate on those scores is at most --target-far. It is
    stored in the database (SCRIBE_DATABASE_URL, or the embedded one) for the encoder's
    model id, and the identify stage uses it from then on, unless a job or
    SCRIBE_IDENTIFY_THRESHOLD sets a threshold. Run it where the worker's model settings
    (SCRIBE_MODELS__*) apply, and again after changing the embedding model.
    """
    from core.errors import ScribeError
    from stages import calibration

    audio = audio or calibration.DEFAULT_AUDIO_DIR
    if not audio.is_dir():
        raise fail(f"{audio} is not a directory (give the data with --audio DIR)", 2)
    settings = Settings()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("loading the speaker-embedding model", total=None)

            def on_progress(step: str, completed: float, total: float) -> None:
                bar.update(task, description="scoring utterances", completed=completed, total=total)

            result = calibration.calibrate(
                audio,
                target_far,
                per_speaker,
                rule,
                settings=settings,
                progress=on_progress,
            )
    except ScribeError as exc:
        raise fail(exc.message) from None
    _show_calibration(result)
    from stages.identify import SHIPPED_THRESHOLDS

    shipped = SHIPPED_THRESHOLDS.get(result["model"])
    if shipped is not None and result["threshold"] < shipped:
        err.print(
            f"[yellow]Note:[/] this is lower than the {shipped:.3f} shipped for this model,"
            " which was calibrated on meeting audio too (docs/models.md, 'Identification"
            " rules'); storing it names more people, and strangers more often, on"
            " distant-microphone recordings unless the audio given here is like them."
        )
    if output:
        result_with_report = {**result, "markdown": calibration.markdown(result)}
        output.write_text(json.dumps(result_with_report, indent=2) + "\n", encoding="utf-8")
        err.print(f"Wrote {shown(output)}")
    if dry_run:
        err.print("Not stored (--dry-run).")
        return

    async def store(pool: asyncpg.Pool) -> None:
        from storage.calibration import CalibrationStore

        await calibration.save(CalibrationStore(pool), result)

    with_database(store)
    out.print(f"Stored: identify uses {result['threshold']:.3f} for {shown(result['model'])}.")
    if settings.identify_threshold is not None:
        err.print(
            f"[yellow]Note:[/] SCRIBE_IDENTIFY_THRESHOLD={settings.identify_threshold} is set"
            " and takes precedence over the calibration."
        )


def _show_calibration(r: dict[str, Any]) -> None:
    d = r["details"]
    impostors = d["best_wrong" if d["rule"] == "open-set" else "different"]
    same = d["same"]
    table = Table(show_header=False, box=None)
    for label, value in (
        ("model", shown(r["model"])),
        ("data", f"{len(d['speakers'])} speakers, {d['test_utterances']} test utterances"),
        ("rule", d["rule"]),
        ("threshold", f"[bold]{r['threshold']:.3f}[/]"),
        (
            "false accepts",
            f"{100 * r['far']:.2f} % ({round(r['far'] * impostors['n'])}/{impostors['n']};"
            f" target {100 * r['target_far']:g} %)",
        ),
        (
            "false rejects",
            f"{100 * r['frr']:.2f} % ({round(r['frr'] * same['n'])}/{same['n']})",
        ),
        ("same speaker", f"min {same['min']:.3f}, median {same['p50']:.3f}"),
        (
            "best wrong print",
            f"median {d['best_wrong']['p50']:.3f}, max {d['best_wrong']['max']:.3f}",
        ),
        ("top-1 unthresholded", f"{100 * d['top1_unthresholded']:.1f} %"),
    ):
        table.add_row(label, value)
    out.print(table)
