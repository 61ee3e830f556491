"""One small error hierarchy; the gateway maps it to HTTP codes in one place."""

from __future__ import annotations


class ScribeError(Exception):
    """Base of every error Scribe raises on purpose. `message` is for a person."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(ScribeError):
    """The request or the uploaded file cannot be processed as given (4xx)."""

    code = "bad_input"


class EmptyUpload(BadInput):
    code = "empty_upload"


class UploadTooLarge(BadInput):
    code = "upload_too_large"


class UnsupportedMedia(BadInput):
    code = "unsupported_media"


class Unauthorized(ScribeError):
    """No API key, or one that is unknown, revoked or expired (401)."""

    code = "unauthorized"


class Forbidden(ScribeError):
    """A known key asking for what its role does not allow, e.g. key administration
    without an admin key (403)."""

    code = "forbidden"


class TooManyJobs(ScribeError):
    """The key's tenant already has as many unfinished jobs as it may (429)."""

    code = "too_many_jobs"


class NotFound(ScribeError):
    code = "not_found"


class Conflict(ScribeError):
    """The resource exists but is not in a state that allows the request (409)."""

    code = "conflict"


class StageFailed(ScribeError):
    """A pipeline stage could not produce its artifact.

    `permanent` failures (bad audio) are not retried; transient ones may be.
    """

    code = "stage_failed"

    def __init__(self, stage: str, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        # Its type and arguments are what crosses from a worker to the gateway (the result
        # backend keeps an exception as JSON), and are enough to rebuild it.
        self.args = (stage, message)
        self.stage = stage
        self.permanent = permanent

    def __str__(self) -> str:
        return f"{self.stage}: {self.message}"


class ModelUnavailable(ScribeError):
    """Model weights are missing from the configured local path."""

    code = "model_unavailable"


class LanguageModelUnavailable(ModelUnavailable):
    """The language model (summaries, answers) could not be loaded or did not answer:
    its server is down or slow, or its weights are missing."""

    code = "language_model_unavailable"
