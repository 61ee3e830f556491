"""`scribe speakers enroll --expires`: a number of days or an ISO 8601 date or time, always
in the future, sent to the server as a time zone-aware timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cli.main import parse_expires

NOW = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)


def test_days_count_from_now() -> None:
    assert parse_expires("90d", NOW) == NOW + timedelta(days=90)
    assert parse_expires(" 1D ", NOW) == NOW + timedelta(days=1)


def test_a_date_means_its_start_in_utc() -> None:
    assert parse_expires("2027-01-31", NOW) == datetime(2027, 1, 31, tzinfo=UTC)


def test_a_time_without_offset_is_utc_and_an_offset_is_kept() -> None:
    assert parse_expires("2026-05-04T12:00", NOW) == datetime(2026, 5, 4, 12, tzinfo=UTC)
    value = parse_expires("2026-05-04T18:00+02:00", NOW)
    assert value.utcoffset() == timedelta(hours=2)
    assert value == datetime(2026, 5, 4, 16, tzinfo=UTC)
    assert parse_expires("2026-05-05T00:00Z", NOW).utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["0d", "2026-05-04", "2026-05-04T10:30:00Z", "2020-01-01"])
def test_now_or_the_past_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not in the future"):
        parse_expires(text, NOW)


@pytest.mark.parametrize("text", ["tomorrow", "90", "90 days", "-5d", "3m", "", "31/01/2027"])
def test_other_text_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"90d.*ISO 8601"):
        parse_expires(text, NOW)


def test_a_count_too_large_for_a_date_is_refused() -> None:
    with pytest.raises(ValueError, match="too far"):
        parse_expires("99999999d", NOW)
