from __future__ import annotations

import pytest
from pydantic import ValidationError

from sysmon.config import load_settings
from sysmon.errors import ConfigError
from sysmon.storage.config import RetentionConfig, TierConfig, parse_duration


def test_default_tiers_are_the_spec() -> None:
    cfg = RetentionConfig()
    assert [(t.resolution, t.keep) for t in cfg.tiers] == [
        ("raw", "1d"),
        ("1m", "7d"),
        ("5m", "30d"),
        ("1h", "365d"),
    ]
    assert [t.keep_seconds for t in cfg.tiers] == [86_400, 7 * 86_400, 30 * 86_400, 365 * 86_400]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1d", 86_400),
        ("12h", 43_200),
        ("365d", 31_536_000),
        ("1h30m", 5_400),
        ("90", 90),
        ("2w", 1_209_600),
        ("0s", 0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "d1", "1 day", "-5m", "1d-"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_bad_keep_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            None,
            retention={
                "tiers": [
                    {"resolution": "raw", "keep": "1 day"},
                    {"resolution": "1m", "keep": "7d"},
                ]
            },
        )
    assert info.value.key == "retention.tiers.0.keep"
    assert "invalid duration '1 day'" in info.value.message


def test_zero_keep_refused() -> None:
    with pytest.raises(ValidationError, match="greater than zero"):
        TierConfig(resolution="raw", keep="0s")


def test_tiers_must_start_raw_and_go_coarser() -> None:
    with pytest.raises(ValidationError, match="first tier must be resolution 'raw'"):
        RetentionConfig(tiers=[TierConfig(resolution="1m", keep="7d")])
    with pytest.raises(ValidationError, match="fine to coarse"):
        RetentionConfig(
            tiers=[
                TierConfig(resolution="raw", keep="1d"),
                TierConfig(resolution="1h", keep="7d"),
                TierConfig(resolution="5m", keep="30d"),
            ]
        )


def test_keep_must_outlive_two_buckets_of_next_tier() -> None:
    with pytest.raises(ValidationError, match="shorter than two 1h buckets"):
        RetentionConfig(
            tiers=[TierConfig(resolution="raw", keep="1h"), TierConfig(resolution="1h", keep="7d")]
        )
    with pytest.raises(ValidationError, match="shorter than two 5m buckets"):
        RetentionConfig(
            tiers=[
                TierConfig(resolution="raw", keep="1d"),
                TierConfig(resolution="1m", keep="9m"),
                TierConfig(resolution="5m", keep="1d"),
            ]
        )


def test_retention_from_yaml_section() -> None:
    settings = load_settings(
        None,
        retention={
            "tiers": [{"resolution": "raw", "keep": "12h"}, {"resolution": "1m", "keep": "2d"}],
            "processes_every": "0s",
        },
    )
    assert settings.retention.tiers[0].keep_seconds == 43_200
    assert settings.retention.processes_every_seconds == 0
