"""GPU safety of the worker entry, checked on CPU: the spawn start method is set before
anything imports torch, several worker processes are pinned to one GPU each, and the
residency budget unloads what may not stay loaded."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.settings import ModelSettings, Settings
from stages.engines.models import ModelManager
from stages.worker import pin_gpu, worker_index

REPO = Path(__file__).resolve().parents[2]


def test_spawn_is_set_before_torch_is_imported() -> None:
    """Run the real entry (`python -m stages.worker`) with taskiq's runner replaced by a
    probe that records the start method and what was imported by then."""
    probe = textwrap.dedent(
        """
        import multiprocessing, runpy, sys
        import taskiq.cli.worker.run as taskiq_run

        seen = {}
        original = multiprocessing.set_start_method

        def set_start_method(method, force=False):
            seen["torch_at_set"] = "torch" in sys.modules
            original(method, force=force)

        multiprocessing.set_start_method = set_start_method

        def fake_run_worker(args):
            seen["method"] = multiprocessing.get_start_method(allow_none=True)
            seen["torch_at_run"] = "torch" in sys.modules
            seen["broker"] = args.broker
            seen["fs_discover"] = args.fs_discover
            seen["modules"] = args.modules
            seen["max_async_tasks"] = args.max_async_tasks
            seen["max_prefetch"] = args.max_prefetch
            seen["max_tasks_per_child"] = args.max_tasks_per_child
            print(repr(seen))
            return 0

        taskiq_run.run_worker = fake_run_worker
        sys.argv = ["stages.worker", "--max-tasks-per-child", "7"]
        try:
            runpy.run_module("stages.worker", run_name="__main__")
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    seen = eval(out.stdout.strip().splitlines()[-1])  # a dict literal we printed ourselves
    assert seen == {
        "torch_at_set": False,
        "method": "spawn",
        "torch_at_run": False,
        "broker": "stages.worker:create_broker",
        "fs_discover": False,  # explicit registration, no autodiscovery
        "modules": [],
        "max_async_tasks": 1,  # one task at a time per process (per GPU)
        "max_prefetch": 0,  # nothing prefetched that a recycled child could strand
        "max_tasks_per_child": 7,
    }


def test_worker_index_from_taskiq_process_names() -> None:
    assert worker_index("worker-0") == 0
    assert worker_index("worker-3") == 3
    assert worker_index("MainProcess") == 0
    assert worker_index("SpawnProcess-2") == 0


@pytest.mark.parametrize(
    ("device", "gpus", "index", "expected"),
    [
        ("cuda", [0, 1], 0, "0"),
        ("cuda", [0, 1], 1, "1"),
        ("cuda", [2, 3], 2, "2"),  # more workers than GPUs: round robin
        ("auto", [1], 0, "1"),
        ("cuda", [], 1, None),  # no list: every process sees every GPU
        ("cpu", [0, 1], 1, None),
    ],
)
def test_pin_gpu(device: str, gpus: list[int], index: int, expected: str | None) -> None:
    settings = Settings(models=ModelSettings(device=device, gpus=gpus))  # type: ignore[arg-type]
    env: dict[str, str] = {"CUDA_VISIBLE_DEVICES": "untouched"}
    assert pin_gpu(settings, index, env) == expected
    assert env["CUDA_VISIBLE_DEVICES"] == (expected or "untouched")


def test_each_worker_process_is_pinned_to_its_gpu(settings: Settings, tmp_path: Path) -> None:
    """`--workers 2` with SCRIBE_MODELS__GPUS=[3,5]: the real entry's two children each
    set their own CUDA_VISIBLE_DEVICES (nothing needs a GPU until a model loads)."""
    own = settings.model_copy(
        update={
            "redis_prefix": f"{settings.redis_prefix}-pin",
            "data_dir": tmp_path,
            "models": ModelSettings(device="cuda", gpus=[3, 5]),
        }
    )
    env = {**os.environ, **own.to_env(), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stages.worker", "--workers", "2", "--log-level", "INFO"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wanted = {"worker-0 uses GPU 3", "worker-1 uses GPU 5"}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text(errors="replace")
            if all(w in text for w in wanted):
                break
            time.sleep(0.2)
        text = log.read_text(errors="replace")
        assert all(w in text for w in wanted), text[-3000:]
        assert "torch was imported before" not in text
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def test_release_keeps_only_the_resident_models(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models=ModelSettings(resident=["transcriber"]))
    manager = ModelManager(settings)
    engines = {name: object() for name in ("transcriber", "diarizer", "encoder")}
    for name, engine in engines.items():
        assert manager._once(name, functools.partial(lambda e: e, engine)) is engine
    assert manager.loaded() == ["diarizer", "encoder", "transcriber"]
    assert sorted(manager.release()) == ["diarizer", "encoder"]
    assert manager.loaded() == ["transcriber"]
    # The resident one is the same object next time; the others load again when used.
    assert manager._once("transcriber", lambda: object()) is engines["transcriber"]
    fresh = object()
    assert manager._once("diarizer", lambda: fresh) is fresh
    assert manager.release() == ["diarizer"]


def test_residency_defaults_to_every_model_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().models.resident == [
        "transcriber",
        "diarizer",
        "encoder",
        "text_embedder",
        "language_model",
    ]
    monkeypatch.setenv("SCRIBE_MODELS__RESIDENT", '["transcriber"]')
    monkeypatch.setenv("SCRIBE_MODELS__GPUS", "[0,1]")
    s = Settings()
    assert s.models.resident == ["transcriber"]
    assert s.models.gpus == [0, 1]
    monkeypatch.setenv("SCRIBE_MODELS__RESIDENT", '["whisper"]')
    with pytest.raises(ValueError):
        Settings()


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_worker_sets_a_passive_openmp_wait_policy(
    settings: Settings, given: str | None, expected: str
) -> None:
    """Set by the worker itself, before torch loads its OpenMP runtime; the environment's
    own setting wins."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(settings.to_env(), PYTHONPATH=str(REPO))
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = (
        "import os, sys; from stages.worker import create_broker; create_broker();"
        " assert 'torch' not in sys.modules; print(os.environ['OMP_WAIT_POLICY'])"
    )
    assert python_prints(code, env).strip() == expected


@pytest.mark.parametrize(("processes", "setting"), [(1, 0), (2, 0), (2, 3)])
def test_worker_processes_share_the_cores(settings: Settings, processes: int, setting: int) -> None:
    """Each of `--workers N` processes computes with cores / N threads (torch reads
    OMP_NUM_THREADS, CTranslate2 gets the setting), unless the setting says how many."""
    want = setting or max(1, len(os.sched_getaffinity(0)) // processes)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(settings.to_env(), PYTHONPATH=str(REPO), SCRIBE_WORKER_PROCESSES=str(processes))
    env["SCRIBE_MODELS__CPU_THREADS"] = str(setting)
    code = (
        "import os, sys; import stages.worker as w; from core.settings import Settings;"
        " w.create_broker(); print(os.environ['OMP_NUM_THREADS'],"
        " w.cpu_threads(Settings(), os.environ))"
    )
    assert python_prints(code, env).split() == [str(want), str(want)]


def python_prints(code: str, env: dict[str, str]) -> str:
    """What `python -c code` prints in the repository, with this environment."""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return out.stdout
