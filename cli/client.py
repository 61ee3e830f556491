"""A small HTTP client of the Scribe API, used by the CLI (and handy in scripts)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from core.events import TERMINAL_EVENTS, JobEvent

CHUNK = 1 << 20


class ApiError(Exception):
    """An error answer of the API, with its message for a person."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code < 400:
        return resp
    code, message = "error", resp.text
    try:
        err = resp.json()["error"]
        code, message = err["code"], err["message"]
    except (ValueError, KeyError, TypeError):
        pass
    raise ApiError(resp.status_code, code, message)


class ScribeClient:
    def __init__(self, base_url: str, *, timeout: float = 60.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        # A server with auth on wants the key on every /v1 request (events included).
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ScribeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ jobs

    def submit(
        self,
        path: Path,
        params: dict[str, Any],
        on_bytes: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Upload `path` as a new job, streaming it (never whole in memory)."""
        boundary = "scribe-" + Path(path).name.encode().hex()[:16] + "-boundary"
        fields = {k: str(v) for k, v in params.items() if v is not None}
        filename = json.dumps(path.name)  # quoted, escaped

        def body() -> Iterator[bytes]:
            for name, value in fields.items():
                yield (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                    f"{value}\r\n"
                ).encode()
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f"filename={filename}\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode()
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    if on_bytes:
                        on_bytes(len(chunk))
                    yield chunk
            yield f"\r\n--{boundary}--\r\n".encode()

        resp = self.http.post(
            "/v1/jobs",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=None,
        )
        data: dict[str, Any] = _check(resp).json()
        return data

    def job(self, job_id: str) -> dict[str, Any]:
        data: dict[str, Any] = _check(self.http.get(f"/v1/jobs/{job_id}")).json()
        return data

    def stages(self) -> list[dict[str, Any]]:
        """The server's stage graph, in order: name, label, inputs, and `result` (false for a
        stage that runs after the job's result)."""
        data: list[dict[str, Any]] = _check(self.http.get("/v1/stages")).json()
        return data

    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = _check(
            self.http.get("/v1/jobs", params={"limit": limit})
        ).json()
        return data

    def events(self, job_id: str, after: str | None = None) -> Iterator[JobEvent]:
        """Follow the job's SSE stream until it succeeds or fails."""
        headers = {"Accept": "text/event-stream"}
        if after:
            headers["Last-Event-ID"] = after
        with self.http.stream(
            "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=None
        ) as resp:
            if resp.status_code >= 400:
                resp.read()
                _check(resp)
            data: list[str] = []
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    event = JobEvent.model_validate_json("\n".join(data))
                    data = []
                    yield event
                    if event.type in TERMINAL_EVENTS:
                        return

    def result(self, job_id: str, fmt: str = "json") -> str:
        return _check(self.http.get(f"/v1/jobs/{job_id}/result", params={"format": fmt})).text

    def replay(self, job_id: str, stage: str, params: dict[str, Any]) -> dict[str, Any]:
        body = {"params": params} if params else {}
        data: dict[str, Any] = _check(
            self.http.post(f"/v1/jobs/{job_id}/stages/{stage}/replay", json=body)
        ).json()
        return data

    # ------------------------------------------------------------ search

    def search(self, query: str, **filters: Any) -> dict[str, Any]:
        params = {"q": query, **{k: v for k, v in filters.items() if v is not None}}
        data: dict[str, Any] = _check(self.http.get("/v1/search", params=params)).json()
        return data

    def reindex(self) -> dict[str, Any]:
        data: dict[str, Any] = _check(self.http.post("/v1/search/reindex")).json()
        return data

    # ------------------------------------------------------------ summaries and answers

    def summary(self, job_id: str) -> dict[str, Any]:
        data: dict[str, Any] = _check(self.http.get(f"/v1/jobs/{job_id}/summary")).json()
        return data

    def ask(self, question: str, job_id: str | None = None) -> Iterator[tuple[str, Any]]:
        """POST /v1/ask streamed: ("delta", text) as the model writes, then ("answer",
        the checked answer) or ("error", message)."""
        body = {"question": question, "job_id": job_id, "stream": True}
        with self.http.stream("POST", "/v1/ask", json=body, timeout=None) as resp:
            if resp.status_code >= 400:
                resp.read()
                _check(resp)
            event = ""
            for line in resp.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = json.loads(line[5:])
                    yield event, data.get("text") if event == "delta" else data

    # ------------------------------------------------------------ speakers

    def enroll(
        self,
        name: str,
        clips: list[Path],
        *,
        consent_by: str | None = None,
        consent_note: str | None = None,
        expires_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Enroll `name` from `clips`, recording who consented and when the voiceprint
        expires (the server refuses it without consent when it requires consent)."""
        form = {"name": name}
        if consent_by is not None:
            form["consent_by"] = consent_by
        if consent_note is not None:
            form["consent_note"] = consent_note
        if expires_at is not None:
            form["expires_at"] = expires_at.isoformat()
        handles = [open(c, "rb") for c in clips]  # noqa: SIM115 - closed below
        try:
            files = [
                ("files", (c.name, h, "application/octet-stream"))
                for c, h in zip(clips, handles, strict=True)
            ]
            resp = self.http.post("/v1/speakers", data=form, files=files, timeout=600)
        finally:
            for h in handles:
                h.close()
        data: dict[str, Any] = _check(resp).json()
        return data

    def speakers(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = _check(self.http.get("/v1/speakers")).json()
        return data

    def delete_speaker(self, speaker_id: str) -> None:
        _check(self.http.delete(f"/v1/speakers/{speaker_id}"))
