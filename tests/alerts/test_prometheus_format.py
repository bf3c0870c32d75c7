"""The Prometheus API's spellings: Go's floats, millisecond timestamps, RFC 3339, time and step input."""

from __future__ import annotations

import math

import pytest

from trustusbank.alerts.prometheus_format import (
    BadParameter,
    go_e,
    parse_step,
    parse_time,
    rfc3339,
    sample_value,
    unix,
)


@pytest.mark.parametrize(
    ("value", "sample", "alert"),
    [
        (1.0, "1", "1e+00"),
        (2.5, "2.5", "2.5e+00"),
        (1234.5, "1234.5", "1.2345e+03"),
        (100.0, "100", "1e+02"),
        (0.05, "0.05", "5e-02"),
        (0.1 + 0.2, "0.30000000000000004", "3.0000000000000004e-01"),
        (0.0, "0", "0e+00"),
        (-0.0, "-0", "-0e+00"),
        (-3.0, "-3", "-3e+00"),
        (1e20, "100000000000000000000", "1e+20"),
        (1e21, "1e+21", "1e+21"),  # from 1e21 a sample value switches to 'e', as MarshalFloat does
        (1.5e-7, "1.5e-07", "1.5e-07"),  # and below 1e-6
        (1e-6, "0.000001", "1e-06"),
        (math.nan, "NaN", "NaN"),
        (math.inf, "+Inf", "+Inf"),
        (-math.inf, "-Inf", "-Inf"),
    ],
)
def test_floats_are_spelled_as_go_spells_them(value: float, sample: str, alert: str) -> None:
    assert sample_value(value) == sample
    assert go_e(value) == alert


def test_timestamps_have_millisecond_precision_and_utc() -> None:
    assert unix(4.0) == 4
    assert isinstance(unix(4.0), int)
    assert unix(1435781451.7814) == 1435781451.781
    assert rfc3339(1700000001.0) == "2023-11-14T22:13:21Z"
    assert rfc3339(1700000001.25) == "2023-11-14T22:13:21.25Z"


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("4", 4.0),
        ("1435781451.7814", 1435781451.781),  # rounded to the millisecond
        ("2015-07-01T20:10:51.781Z", 1435781451.781),
        ("2015-07-01T22:10:51.781+02:00", 1435781451.781),
    ],
)
def test_times_are_unix_seconds_or_rfc3339(raw: str, seconds: float) -> None:
    assert parse_time(raw) == seconds


@pytest.mark.parametrize("raw", ["", "yesterday", "NaN", "inf", "2015-07-01", "2015-07-01T20:10:51"])
def test_a_time_that_is_none_is_refused(raw: str) -> None:
    with pytest.raises(BadParameter, match="cannot parse"):
        parse_time(raw)


def test_steps_are_seconds_or_durations() -> None:
    assert [parse_step(s) for s in ("15", "0.5", "15s", "1m30s")] == [15.0, 0.5, 15.0, 90.0]
    for bad in ("", "15x", "inf"):
        with pytest.raises(BadParameter, match="valid duration"):
            parse_step(bad)
