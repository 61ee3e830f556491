"""Job parameters from a form or a replay body, checked into core.artifacts.JobParams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from core.artifacts import JobParams
from gateway.http.errors import InvalidRequest, describe_validation_errors

PARAM_FIELDS = tuple(JobParams.model_fields)


def validate_params(values: Mapping[str, Any]) -> JobParams:
    """JobParams from loose values (form strings, JSON); 422 with a readable message."""
    try:
        params = JobParams.model_validate(dict(values))
    except ValidationError as e:
        raise InvalidRequest(describe_validation_errors(e.errors())) from None
    lo, hi, n = params.min_speakers, params.max_speakers, params.num_speakers
    if lo is not None and hi is not None and lo > hi:
        raise InvalidRequest(f"min_speakers ({lo}) is larger than max_speakers ({hi})")
    if n is not None and ((lo is not None and n < lo) or (hi is not None and n > hi)):
        raise InvalidRequest(
            f"num_speakers ({n}) is outside min_speakers..max_speakers ({lo}..{hi})"
        )
    return params


def params_from_form(fields: Mapping[str, str]) -> JobParams:
    """Form fields as sent by a browser: empty strings mean "not set"."""
    values = {k: v.strip() for k, v in fields.items() if v.strip() != ""}
    return validate_params(values)


def merge_params(current: JobParams, overrides: Mapping[str, Any]) -> JobParams:
    """`overrides` on top of `current`; an explicit null clears a value."""
    validate_params(overrides)  # report unknown or bad fields against what was sent
    merged = current.model_dump() | dict(overrides)
    return validate_params(merged)
