"""The collector contract.

A collector reads one kind of metric through a ``SystemSource`` (the psutil seam, see
``source.py``) and returns a ``Collected`` value. Lifecycle guarantees, as the scheduler
keeps them:

* ``collect`` is never called concurrently with itself; one instance lives for the whole
  run, so a collector may keep the previous counters it needs for rates.
* ``monotonic`` is the monotonic clock at the start of the tick: use it (never the wall
  clock) for elapsed time between two samples.
* The first call of a counter-based collector returns no rates (it only sets the
  baseline); a counter that went backwards yields no rate for that series and tick.
* An exception (including psutil's AccessDenied) fails only this collector for this tick:
  it is logged once per failure streak and the other collectors go on.
* ``close`` is called once after the last ``collect``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from sysmon.models import Collected, MetricInfo


class CollectorOptions(BaseModel):
    """Options every collector accepts; a collector subclasses this for its own keys."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="This collector's deadline (default collection.collector_timeout_seconds)",
    )


@runtime_checkable
class Collector(Protocol):
    name: ClassVar[str]
    fields: ClassVar[Sequence[MetricInfo]]

    def collect(self, monotonic: float) -> Collected: ...

    def close(self) -> None: ...


class CollectorFactory(Protocol):
    """A registered collector class: ``Options`` validates its config section."""

    name: ClassVar[str]
    fields: ClassVar[Sequence[MetricInfo]]
    Options: ClassVar[type[CollectorOptions]]

    def __call__(self, source: Any, options: Any) -> Collector: ...
