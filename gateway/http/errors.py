"""The one place where errors become HTTP answers.

Every error body has the same shape: `{"error": {"code": "...", "message": "..."}}`, the
message written for a person. Scribe's own errors (core.errors) map by class; request
validation and Starlette's HTTP errors (unknown route, wrong method) are reshaped to match;
anything else is a logged 500 with a generic message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    BadInput,
    Conflict,
    EmptyUpload,
    Forbidden,
    ModelUnavailable,
    NotFound,
    ScribeError,
    StageFailed,
    TooManyJobs,
    Unauthorized,
    UnsupportedMedia,
    UploadTooLarge,
)
from gateway.http.headers import header_dict

log = logging.getLogger("scribe.gateway")


class InvalidRequest(BadInput):
    """Well-formed but invalid values (a negative speaker count): 422."""

    code = "invalid_request"


class ServiceUnavailable(ScribeError):
    """A dependency (worker, database) did not answer in time: 503."""

    code = "unavailable"


class RequestTimeout(ScribeError):
    """The client stopped sending its request body, or took too long: 408."""

    code = "request_timeout"


class BodyTooLarge(ScribeError):
    """A request body over the limit of its route: 413."""

    code = "body_too_large"


class MisdirectedRequest(ScribeError):
    """A Host header this gateway does not answer to (auth off, gateway.http.same_origin): 421."""

    code = "misdirected_request"


class CrossSiteRequest(Forbidden):
    """A browser's request that changes something, sent from another site's page: 403."""

    code = "cross_site_request"


# Most specific first: the first class an error is an instance of decides.
STATUS: tuple[tuple[type[ScribeError], int], ...] = (
    (EmptyUpload, 400),
    (UploadTooLarge, 413),
    (BodyTooLarge, 413),
    (RequestTimeout, 408),
    (MisdirectedRequest, 421),
    (UnsupportedMedia, 415),
    (InvalidRequest, 422),
    (BadInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (TooManyJobs, 429),
    (Conflict, 409),
    (StageFailed, 422),
    (ServiceUnavailable, 503),
    # The search's query embedder is not installed or configured: the server's to fix.
    (ModelUnavailable, 503),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "upload_too_large",
    415: "unsupported_media",
    429: "too_many_requests",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def status_of(exc: ScribeError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


# A request with many errors gets the first few named, not an echo of all it sent.
MAX_ERRORS_SHOWN = 5


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """Pydantic/FastAPI errors as one sentence: "num_speakers: must be >= 1; ..."."""
    parts: list[str] = []
    for err in errors:
        loc: Sequence[Any] = err.get("loc", ())
        if loc and loc[0] in ("body", "query", "path", "header", "cookie", "form"):
            where = loc[0]
            loc = loc[1:]
        else:
            where = ""
        name = ".".join(str(p) for p in loc)
        kind = err.get("type", "")
        if kind == "json_invalid":
            ctx = err.get("ctx") or {}
            detail = f" ({ctx['error']})" if "error" in ctx else ""
            parts.append(f"the request body is not valid JSON{detail}")
            continue
        msg = str(err.get("msg", "is invalid"))
        if kind == "extra_forbidden":
            msg = "is not a known field"
        elif kind == "missing":
            msg = f"is required{' in the ' + where if where else ''}"
        elif isinstance(err.get("input"), str | int | float):
            msg = f"{msg} (got {err['input']!r})"
        parts.append(f"{name[:60]}: {msg[:200]}" if name else msg[:200])
    if len(parts) > MAX_ERRORS_SHOWN:
        parts[MAX_ERRORS_SHOWN:] = [f"and {len(parts) - MAX_ERRORS_SHOWN} more"]
    return "; ".join(parts) or "the request is invalid"


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""

    async def scribe_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ScribeError)
        status = status_of(exc)
        if status == 500:
            log.error("unmapped %s: %s", type(exc).__name__, exc.message)
            return error_response(500, "internal_error", "something went wrong on our side")
        return error_response(status, exc.code, exc.message)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "invalid_request", describe_validation_errors(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "internal")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, code, message, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Sent by Starlette's outermost middleware, outside gateway.http.headers' own.
        return error_response(
            500, "internal_error", "something went wrong on our side", headers=header_dict()
        )

    app.add_exception_handler(ScribeError, scribe_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
