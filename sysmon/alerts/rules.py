"""Compiled rules: the pure part of evaluation (which series, breached or recovered).

A ``RuleConfig`` is turned into a ``CompiledRule`` once at start-up so that the per-tick
work is a dict lookup plus a comparison: the comparison is a bound ``operator`` function
and the selector verdict is cached per label tuple (a host has a handful of mounts and
interfaces, so the cache stays tiny and every tick after the first is a hit).
"""

from __future__ import annotations

import dataclasses
import operator as op
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from sysmon.alerts.config import AlertsConfig, RuleConfig
from sysmon.models import Labels

_COMPARE: Mapping[str, Callable[[float, float], bool]] = {
    ">": op.gt,
    ">=": op.ge,
    "<": op.lt,
    "<=": op.le,
}
# "Recovered" is the strict opposite of breaching the recovery threshold.
_RECOVERED: Mapping[str, Callable[[float, float], bool]] = {
    ">": op.le,
    ">=": op.lt,
    "<": op.ge,
    "<=": op.gt,
}


@dataclass(slots=True)
class CompiledRule:
    """One rule ready for the hot path. ``index`` is its position in the config."""

    index: int
    config: RuleConfig
    metric: str
    field: str
    channels: tuple[str, ...]
    repeat_interval: float
    _breach: Callable[[float, float], bool]
    _recovered: Callable[[float, float], bool]
    _selector: tuple[tuple[str, str], ...]
    _match_cache: dict[Labels, bool] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def threshold(self) -> float:
        return self.config.threshold

    @property
    def recovery_threshold(self) -> float:
        rt = self.config.recovery_threshold
        return self.config.threshold if rt is None else rt

    def breaches(self, value: float) -> bool:
        return self._breach(value, self.config.threshold)

    def recovered(self, value: float) -> bool:
        """True once the value is past the recovery threshold (hysteresis)."""
        return self._recovered(value, self.recovery_threshold)

    def matches(self, labels: Labels) -> bool:
        """Does the series ``labels`` belong to this rule? Cached per label tuple."""
        hit = self._match_cache.get(labels)
        if hit is None:
            hit = _selector_matches(self._selector, labels)
            if len(self._match_cache) < 10_000:  # bound memory if labels churn
                self._match_cache[labels] = hit
        return hit


def _selector_matches(selector: tuple[tuple[str, str], ...], labels: Labels) -> bool:
    """The series must carry exactly the selector's keys; values match as globs."""
    if len(selector) != len(labels):
        return False
    have = dict(labels)
    for key, pattern in selector:
        value = have.get(key)
        if value is None:
            return False
        if pattern in ("any", "*"):
            continue
        if not fnmatchcase(value, pattern):
            return False
    return True


def compile_rules(config: AlertsConfig) -> list[CompiledRule]:
    out: list[CompiledRule] = []
    for index, rule in enumerate(config.rules):
        metric, _, fld = rule.metric.partition(".")
        out.append(
            CompiledRule(
                index=index,
                config=rule,
                metric=metric,
                field=fld,
                channels=tuple(config.channels_for(rule)),
                repeat_interval=(
                    rule.repeat_interval
                    if rule.repeat_interval is not None
                    else config.repeat_interval
                ),
                _breach=_COMPARE[rule.operator],
                _recovered=_RECOVERED[rule.operator],
                _selector=tuple(sorted(rule.selector.items())),
            )
        )
    return out


def alert_labels(rule: CompiledRule, series: Labels) -> dict[str, str]:
    """The labels silences match against: rule name, severity, rule labels, series labels."""
    labels = {"rule": rule.name, "severity": rule.config.severity, "metric": rule.config.metric}
    labels.update(rule.config.labels)
    labels.update(dict(series))
    return labels
