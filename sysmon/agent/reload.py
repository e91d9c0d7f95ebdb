"""What a configuration reload (SIGHUP, ``sysmon reload``) may change in a running agent.

Pure comparison of the old and new settings. Alert rules, channels and thresholds, and
collector options (enable, disable, options, deadlines) apply at once; a collector whose
section did not change keeps its instance, so its rate baselines survive and the reload
costs no sample. Keys that shape the files or the schedule (database, retention,
interval, the live channel) need a restart: the reload applies the rest and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sysmon.config import Settings

RESTART_KEYS = (
    "database",
    "retention",
    "collection.interval_seconds",
    "collection.plugins",
    "agent",
    "forward",
    "relational",
)


@dataclass(frozen=True)
class ReloadPlan:
    alerts_changed: bool
    collectors_rebuilt: tuple[str, ...]
    collectors_added: tuple[str, ...]
    collectors_removed: tuple[str, ...]
    deadline_changed: bool
    needs_restart: tuple[str, ...] = field(default=())

    @property
    def changes_anything(self) -> bool:
        return bool(
            self.alerts_changed
            or self.collectors_rebuilt
            or self.collectors_added
            or self.collectors_removed
            or self.deadline_changed
        )


def _get(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value.model_dump() if hasattr(value, "model_dump") else value


def plan_reload(
    old: Settings, new: Settings, enabled_old: set[str], enabled_new: set[str]
) -> ReloadPlan:
    """Compare two settings; ``enabled_*`` are the collector names each one enables."""
    rebuilt = tuple(
        sorted(
            name
            for name in enabled_old & enabled_new
            if (old.collectors.get(name) or {}) != (new.collectors.get(name) or {})
        )
    )
    return ReloadPlan(
        alerts_changed=old.alerts.model_dump() != new.alerts.model_dump()
        or old.server.dashboard_url != new.server.dashboard_url,
        collectors_rebuilt=rebuilt,
        collectors_added=tuple(sorted(enabled_new - enabled_old)),
        collectors_removed=tuple(sorted(enabled_old - enabled_new)),
        deadline_changed=old.collection.deadline_seconds != new.collection.deadline_seconds,
        needs_restart=tuple(k for k in RESTART_KEYS if _get(old, k) != _get(new, k)),
    )
