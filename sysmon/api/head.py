"""``LiveHead``: the newest raw slots of every series, kept in memory from the live ticks,
so recent range queries are answered without a store read (like Prometheus' head block).

The agent publishes each tick's snapshot to the server (``TickFeed``) and hands the same
snapshot to its store writer, so the store's raw slots and the head's hold the same
values. For a grid the store describes (``RawGridQuery.raw_grid``: raw tier, one slot per
point, nothing expired), ``answer`` returns the columns the store's own read would. What
keeps that true, and what the head checks:

* **Coverage** starts at the first tick seen after a reset. A reset is a ``hello`` frame
  (an agent started), a tick whose count is not the previous one's + 1 (a frame the
  channel dropped, an agent restarted), a tick not in a later slot than the previous
  one, a tick of another interval than the store's raw step, or a frame saying the
  agent's writer lags (more than the previous tick pending) or failed its last write
  (ticks may then be stored late, or dropped: the head starts over and reads the store
  back once the writer keeps up). A window that starts before the coverage is read
  from the store.
* Slots between two consecutive ticks held no tick: empty in both. Slots after the
  newest tick are empty (the store is written after the frame goes out, so it holds
  nothing newer either, short of a write that beat the frame by microseconds).
* **Fields are the store's**, in its order: learned from each answer the store gives for
  a series (``learn``). Until then, or while a tick carries a field the store did not
  list, the store answers. A series the store has never answered for is the store's
  (so is its 422 for an unknown selector).
* Only totals and series with one label key are kept: the tick body joins the values of
  several label keys with ``/``, which cannot be split back for sure.
* A series not seen for the whole window is dropped (containers, interfaces that went).

Memory: ``slots`` float64 per field of every series (900 slots x 300 fields: 2 MiB).
Everything runs on the server's event loop (frames and requests): no locks.
"""

from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from sysmon.models import Labels
from sysmon.serialize import from_json
from sysmon.storage.base import RawGrid

NAN = float("nan")
SeriesKey = tuple[str, Labels]
SeriesColumns = Mapping[str, Sequence[float | None]]


def _slot(t: float, step: float) -> int:
    """The slot of instant ``t`` (the store writer's snapping)."""
    return math.floor(t / step + 0.5)


class LiveHead:
    def __init__(self, step: float, slots: int, label_keys: Mapping[str, Sequence[str]]) -> None:
        """``step``: the store's raw slot width; ``slots``: how many are kept;
        ``label_keys``: per metric its label keys (the catalog's)."""
        if step <= 0 or slots < 1:
            raise ValueError("step and slots must be positive")
        self.step = float(step)
        self.slots = slots
        self._one_key = {m: keys[0] for m, keys in label_keys.items() if len(keys) == 1}
        self._columns: dict[SeriesKey, dict[str, array[float]]] = {}
        self._seen: dict[SeriesKey, int] = {}
        self._fields: dict[SeriesKey, tuple[str, ...]] = {}
        self._lo: int | None = None
        """First covered slot (``None``: nothing covered)."""
        self._hi = 0
        """Newest tick's slot."""
        self._ticks: int | None = None
        self.epoch = 0
        """Counts coverage starts: a fill read for an older one is dropped."""
        self.started = asyncio.Event()
        """Set when coverage starts anew: ``backfill`` then copies the store's newest slots
        before it, so a restarted server answers recent windows at once."""
        self.resets = 0
        self.answers = 0

    # Frames ----------------------------------------------------------------------------

    def on_frame(self, meta: Mapping[str, Any], body: bytes) -> None:
        """One frame of the live channel, in the agent's order (``FrameSource``)."""
        agent = (meta.get("status") or {}).get("agent") or {}
        ticks, ts, interval = agent.get("ticks"), meta.get("timestamp"), meta.get("interval")
        if (
            meta.get("type") != "tick"
            or not isinstance(ticks, int)
            or not isinstance(ts, int | float)
            or interval != self.step
        ):
            self._reset()
            return
        database = (meta.get("status") or {}).get("database") or {}
        pending = database.get("pending_writes")
        if not isinstance(pending, int) or pending > 1 or database.get("last_error"):
            # The writer lags or fails: ticks may be stored late or dropped. Start over
            # (and read the store back) once it keeps up again.
            self._reset()
            return
        try:
            document = from_json(body)
        except ValueError:
            self._reset()
            return
        slot = _slot(float(ts), self.step)
        follows = (
            self._lo is not None
            and ticks == (self._ticks or 0) + 1
            and self._hi < slot < self._hi + self.slots
        )
        if follows:
            self._advance(slot)
        else:
            self._reset()
            self._lo = self._hi = slot
            self.epoch += 1
            self.started.set()
        self._ticks = ticks
        metrics = document.get("metrics") if isinstance(document, dict) else None
        if isinstance(metrics, dict):
            self._keep(slot, metrics)

    def _reset(self) -> None:
        if self._lo is not None:
            self.resets += 1
        self._columns.clear()
        self._seen.clear()
        self._lo = None
        self._ticks = None

    def _advance(self, slot: int) -> None:
        """Blank the slots from the previous tick's to ``slot`` (ring positions reused)."""
        assert self._lo is not None
        for columns in self._columns.values():
            for column in columns.values():
                _blank(column, self._hi + 1, slot)
        self._hi = slot
        self._lo = max(self._lo, slot - self.slots + 1)
        gone = [key for key, last in self._seen.items() if last < self._lo]
        for key in gone:
            del self._columns[key], self._seen[key]

    def _keep(self, slot: int, metrics: Mapping[str, Any]) -> None:
        position = slot % self.slots
        for metric, groups in metrics.items():
            if not isinstance(groups, dict):
                continue
            label_key = self._one_key.get(metric)
            for key, group in groups.items():
                if not isinstance(group, dict):
                    continue
                if key == "total":
                    self._put((metric, ()), group, slot, position)
                elif key == label_key:
                    for value, fields in group.items():
                        if isinstance(fields, dict):
                            self._put((metric, ((key, value),)), fields, slot, position)

    def _put(self, key: SeriesKey, fields: Mapping[str, Any], slot: int, position: int) -> None:
        columns = self._columns.get(key)
        if columns is None:
            columns = self._columns[key] = {}
        self._seen[key] = slot
        for name, value in fields.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            column = columns.get(name)
            if column is None:
                column = columns[name] = array("d", [NAN]) * self.slots
            column[position] = float(value)

    def fill(self, epoch: int, series: Sequence[tuple[str, Labels, RawGrid, SeriesColumns]]) -> int:
        """Copy the store's raw answers (``backfill``) into the slots before the coverage
        of ``epoch``; returns the series copied (0 when the coverage restarted since)."""
        if epoch != self.epoch or self._lo is None:
            return 0
        first = self._lo
        lo = max(
            self._hi - self.slots + 1,
            min(first, min((_slot(g.t0, self.step) for _, _, g, _ in series), default=first)),
        )
        for metric, labels, grid, fields in series:
            key = (metric, labels)
            self._fields[key] = tuple(fields)
            start = _slot(grid.t0, self.step)
            newest = None
            columns = self._columns.get(key)
            for name, values in fields.items():
                for i, value in enumerate(values):
                    slot = start + i
                    if value is None or not lo <= slot < first:
                        continue
                    if columns is None:
                        columns = self._columns[key] = {}
                    column = columns.get(name)
                    if column is None:
                        column = columns[name] = array("d", [NAN]) * self.slots
                    column[slot % self.slots] = value
                    newest = slot if newest is None else max(newest, slot)
            if newest is not None and self._seen.get(key, newest) <= newest:
                self._seen[key] = newest
        self._lo = lo
        return len(series)

    # Answers ---------------------------------------------------------------------------

    def keeps(self, metric: str, labels: Labels) -> bool:
        """Whether the head keeps this series: totals, or one label of the metric's only
        label key (the tick body cannot give several label values back for sure)."""
        if not labels:
            return True
        return len(labels) == 1 and labels[0][0] == self._one_key.get(metric)

    def learn(self, metric: str, labels: Labels, fields: Sequence[str]) -> None:
        """The store's field names of a series, in its order (from one of its answers)."""
        self._fields[(metric, labels)] = tuple(fields)

    def answer(self, metric: str, labels: Labels, grid: RawGrid) -> dict[str, list[float]] | None:
        """The store's raw columns for ``grid``, NaN for a gap (the store's ``None``: both
        are written as JSON ``null``), or ``None`` when the head cannot say (see the module
        doc): the store answers then."""
        if not self.keeps(metric, labels):
            return None
        key = (metric, labels)
        names = self._fields.get(key)
        if names is None or self._lo is None:
            return None
        if abs(grid.step - self.step) > 1e-9:
            return None
        first = _slot(grid.t0, self.step)
        if first < self._lo:
            return None
        columns = self._columns.get(key, {})
        if any(name not in names for name in columns):
            return None  # a field the store has not listed (yet)
        last = min(first + grid.n - 1, self._hi)
        after = [NAN] * (grid.n - max(0, last - first + 1))
        fields: dict[str, list[float]] = {}
        for name in names:
            column = columns.get(name)
            if column is None or last < first:
                fields[name] = [NAN] * grid.n
            else:
                fields[name] = _read(column, first, last).tolist() + after
        self.answers += 1
        return fields

    def status(self) -> dict[str, Any]:
        """For ``/api/v1/health``."""
        covered = self.covered
        return {
            "covered_from": None if covered is None else covered[0],
            "covered_to": None if covered is None else covered[1],
            "series": len(self._columns),
            "answers": self.answers,
            "resets": self.resets,
        }

    @property
    def covered(self) -> tuple[float, float] | None:
        """First and newest covered instants (``None``: nothing covered)."""
        if self._lo is None:
            return None
        return self._lo * self.step, self._hi * self.step


def _blank(column: array[float], first: int, last: int) -> None:
    """Set the ring positions of slots ``first..last`` to NaN (at most one lap)."""
    slots = len(column)
    count = min(last - first + 1, slots)
    if count <= 0:
        return
    start = first % slots
    head = min(count, slots - start)
    column[start : start + head] = array("d", [NAN]) * head
    if count > head:
        column[0 : count - head] = array("d", [NAN]) * (count - head)


def _read(column: array[float], first: int, last: int) -> array[float]:
    """The values of slots ``first..last`` (within one lap) from the ring."""
    slots = len(column)
    start = first % slots
    count = last - first + 1
    if start + count <= slots:
        return column[start : start + count]
    return column[start:] + column[: count - (slots - start)]
