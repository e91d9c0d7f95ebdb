"""API JSON -> what ``sysmon top`` shows: styled text for each panel, process table rows.

Pure functions over the documents of docs/CONTRACTS.md (``/metrics/current`` and each
stream event, ``/alerts``, ``/health``, ``/system``, ``/metrics/processes`` rows). They
return ``rich.text.Text`` (the styles are the only difference from plain text; tests read
``.plain``), so the Textual layer only places them. Documents come from the network, so
every lookup tolerates a missing or mistyped value and shows ``-`` for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rich.text import Text

from sysmon.tui.format import (
    MISSING,
    bar,
    fmt_bytes,
    fmt_duration,
    fmt_number,
    fmt_percent,
    fmt_rate,
    level,
    shorten,
)

SortKey = Literal["cpu", "memory", "pid", "name"]
SORT_KEYS: tuple[SortKey, ...] = ("cpu", "memory", "pid", "name")
STYLES = {"ok": "green", "warn": "yellow", "crit": "bold red"}
PROCESS_COLUMNS = ("PID", "USER", "CPU%", "MEM%", "RSS", "THR", "S", "NAME", "COMMAND")
BAR = 20
MAX_ROWS = 8  # per list in a panel; the rest is summarised as "+N more"


def dig(document: Any, *keys: str) -> Any:
    """``document[k1][k2]...`` or ``None`` as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fields(snapshot: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    found = dig(snapshot, "metrics", *keys)
    return found if isinstance(found, Mapping) else {}


def _series(snapshot: Mapping[str, Any], metric: str, label: str) -> dict[str, Mapping[str, Any]]:
    found = dig(snapshot, "metrics", metric, label)
    if not isinstance(found, Mapping):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, Mapping)}


def _meter(text: Text, percent: float | None, width: int = BAR) -> None:
    style = STYLES[level(percent)]
    text.append(bar(percent, width), style=style)
    text.append(f" {fmt_percent(percent):>6}", style=style)


def _more(text: Text, hidden: int) -> None:
    if hidden > 0:
        text.append(f"\n+{hidden} more", style="dim")


# -- panels ------------------------------------------------------------------------------


def cpu_text(snapshot: Mapping[str, Any]) -> Text:
    """Total CPU with its split, one bar per core (in columns when there are many), load."""
    total = _fields(snapshot, "cpu", "total")
    text = Text()
    text.append("Total ", style="bold")
    _meter(text, number(total.get("percent")))
    parts = [
        ("usr", "user_percent"),
        ("sys", "system_percent"),
        ("wait", "iowait_percent"),
        ("steal", "steal_percent"),
    ]
    split = [f"{n} {fmt_percent(number(total.get(k)))}" for n, k in parts if k in total]
    if split:
        text.append("  " + "  ".join(split), style="dim")
    cores = sorted(_series(snapshot, "cpu", "core").items(), key=lambda kv: _core_order(kv[0]))
    columns = 1 if len(cores) <= 8 else 2 if len(cores) <= 16 else 4
    width = {1: BAR, 2: 12, 4: 6}[columns]
    for index, (core, fields) in enumerate(cores):
        text.append("\n" if index % columns == 0 else "  ")
        text.append(f"{core:>5} ", style="dim")
        _meter(text, number(fields.get("percent")), width)
    loads = [fmt_number(number(total.get(f"load_{n}"))) for n in (1, 5, 15)]
    text.append("\nload ", style="bold")
    text.append(" ".join(loads))
    freq = number(total.get("freq_mhz"))
    if freq is not None:
        text.append(f"  {freq:.0f} MHz", style="dim")
    procs = _fields(snapshot, "processes", "total")
    count, threads = number(procs.get("count")), number(procs.get("threads"))
    if count is not None:
        text.append(f"  {count:.0f} procs", style="dim")
    if threads is not None:
        text.append(f" {threads:.0f} threads", style="dim")
    return text


def _core_order(core: str) -> tuple[int, str]:
    return (int(core), "") if core.isdigit() else (1 << 30, core)


def memory_text(snapshot: Mapping[str, Any]) -> Text:
    mem = _fields(snapshot, "memory", "total")
    text = Text()
    text.append("Mem  ", style="bold")
    _meter(text, number(mem.get("percent")))
    text.append(f"  {fmt_bytes(number(mem.get('used_bytes')))}")
    text.append(f" / {fmt_bytes(number(mem.get('total_bytes')))}")
    details = [("avail", "available_bytes"), ("cached", "cached_bytes"), ("buf", "buffers_bytes")]
    shown = [f"{n} {fmt_bytes(number(mem.get(k)))}" for n, k in details if k in mem]
    if shown:
        text.append("\n     " + "  ".join(shown), style="dim")
    text.append("\nSwap ", style="bold")
    swap_total = number(mem.get("swap_total_bytes"))
    if swap_total == 0:
        text.append("none", style="dim")
        return text
    _meter(text, number(mem.get("swap_percent")))
    text.append(f"  {fmt_bytes(number(mem.get('swap_used_bytes')))}")
    text.append(f" / {fmt_bytes(swap_total)}")
    swap_in = fmt_rate(number(mem.get("swap_in_bytes_per_sec")))
    swap_out = fmt_rate(number(mem.get("swap_out_bytes_per_sec")))
    text.append(f"\n     in {swap_in}  out {swap_out}", style="dim")
    return text


def disk_text(snapshot: Mapping[str, Any], max_rows: int = MAX_ROWS) -> Text:
    """Usage per mount, then I/O rates per device and for all devices."""
    text = Text()
    mounts = sorted(_series(snapshot, "disk", "mount").items())
    for index, (mount, fields) in enumerate(mounts[:max_rows]):
        if index:
            text.append("\n")
        text.append(f"{shorten(mount, 12):<12} ", style="bold")
        _meter(text, number(fields.get("percent")), 12)
        used, total = number(fields.get("used_bytes")), number(fields.get("total_bytes"))
        text.append(f"  {fmt_bytes(used)} / {fmt_bytes(total)}")
    _more(text, len(mounts) - max_rows)
    devices = sorted(_series(snapshot, "disk", "device").items())
    rows = [*devices[:max_rows], ("all", _fields(snapshot, "disk", "total"))]
    for name, fields in rows:
        if text:
            text.append("\n")
        text.append(f"{shorten(name, 12):<12} ", style="bold" if name == "all" else "")
        text.append(f"R {fmt_rate(number(fields.get('read_bytes_per_sec'))):>11}")
        text.append(f"  W {fmt_rate(number(fields.get('write_bytes_per_sec'))):>11}")
        busy = number(fields.get("busy_percent"))
        if busy is not None:
            text.append(f"  busy {fmt_percent(busy)}", style=STYLES[level(busy)])
    _more(text, len(devices) - max_rows)
    return text


def network_text(snapshot: Mapping[str, Any], max_rows: int = MAX_ROWS) -> Text:
    """Receive/send rates per interface, busiest first, then the totals (loopback excluded)."""
    interfaces = list(_series(snapshot, "network", "interface").items())
    interfaces.sort(key=lambda kv: (-_traffic(kv[1]), kv[0]))
    text = Text()
    for name, fields in [*interfaces[:max_rows], ("total", _fields(snapshot, "network", "total"))]:
        if text:
            text.append("\n")
        text.append(f"{shorten(name, 12):<12} ", style="bold" if name == "total" else "")
        text.append(f"↓ {fmt_rate(number(fields.get('bytes_recv_per_sec'))):>11}", style="cyan")
        text.append(
            f"  ↑ {fmt_rate(number(fields.get('bytes_sent_per_sec'))):>11}", style="magenta"
        )
        errors = sum(
            number(fields.get(k)) or 0.0
            for k in ("errin_per_sec", "errout_per_sec", "dropin_per_sec", "dropout_per_sec")
        )
        if errors > 0:
            text.append(f"  err/drop {errors:.1f}/s", style="red")
    _more(text, len(interfaces) - max_rows)
    return text


def _traffic(fields: Mapping[str, Any]) -> float:
    recv = number(fields.get("bytes_recv_per_sec")) or 0.0
    return recv + (number(fields.get("bytes_sent_per_sec")) or 0.0)


def alerts_text(alerts: Sequence[Mapping[str, Any]], now: float | None) -> Text:
    """One line per active alert, firing first; ``now`` (the server's clock, from the last
    snapshot) dates them, so a remote server's clock skew does not matter."""
    if not alerts:
        return Text("no active alerts", style="green")
    ordered = sorted(alerts, key=lambda a: (a.get("state") != "firing", str(a.get("rule"))))
    text = Text()
    for index, alert in enumerate(ordered):
        if index:
            text.append("\n")
        state = str(alert.get("state", "?"))
        severity = str(alert.get("severity", ""))
        style = ("bold red" if severity == "critical" else "yellow") if state == "firing" else ""
        text.append(f"{state.upper():<8}", style=style)
        text.append(f" {severity:<8} ", style=style)
        text.append(str(alert.get("rule", "?")), style="bold")
        labels = alert.get("labels")
        selector = ""
        if isinstance(labels, Mapping) and labels:
            selector = "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
        value = number(alert.get("value"))
        shown = MISSING if value is None else f"{value:g}"
        threshold = number(alert.get("threshold"))
        text.append(
            f"  {alert.get('metric', '?')}{selector} = {shown}"
            f" {alert.get('operator', '')} {MISSING if threshold is None else f'{threshold:g}'}"
        )
        since = number(alert.get("firing_since")) or number(alert.get("since"))
        if since is not None and now is not None:
            text.append(f"  for {fmt_duration(now - since)}", style="dim")
        if alert.get("silenced"):
            text.append("  (silenced)", style="dim")
    return text


def health_text(health: Mapping[str, Any] | None) -> Text:
    if health is None:
        return Text("health: unknown", style="dim")
    status = str(health.get("status", "unknown"))
    text = Text("health: ")
    text.append(status, style="green" if status == "ok" else "bold yellow")
    problems = health.get("problems")
    if isinstance(problems, list) and problems:
        text.append(" - " + "; ".join(str(p) for p in problems), style="yellow")
    return text


def header_text(
    system: Mapping[str, Any] | None, snapshot: Mapping[str, Any] | None, url: str
) -> Text:
    text = Text("sysmon top", style="bold")
    if system is not None:
        text.append(f"  {system.get('hostname', '?')}", style="bold cyan")
        if system.get("os"):
            text.append(f"  {system['os']}", style="dim")
        cores = number(system.get("cpu_count"))
        if cores is not None:
            text.append(f"  {cores:.0f} cores")
        boot = number(system.get("boot_time"))
        now = number(dig(snapshot, "timestamp"))
        if boot is not None and now is not None:
            text.append(f"  up {fmt_duration(now - boot)}")
    stamp = number(dig(snapshot, "timestamp"))
    if stamp is not None:
        text.append(f"  {time.strftime('%H:%M:%S', time.localtime(stamp))}")
    text.append(f"  {url}", style="dim")
    return text


# -- process table -----------------------------------------------------------------------


def server_sort(sort: SortKey) -> Literal["cpu", "memory"]:
    """The ``sort=`` to ask the server for: its own order for CPU and memory; pid and name
    are sorted here, from the widest table (by CPU)."""
    return "memory" if sort == "memory" else "cpu"


def matches(row: Mapping[str, Any], needle: str) -> bool:
    """Case-insensitive substring of the name or the command line (when the role sees it)."""
    if not needle:
        return True
    wanted = needle.casefold()
    return any(wanted in str(row.get(k) or "").casefold() for k in ("name", "cmdline"))


def order_processes(
    rows: Sequence[Mapping[str, Any]], sort: SortKey, needle: str = ""
) -> list[Mapping[str, Any]]:
    """Filter by ``needle``; keep the server's order for cpu/memory (it sorted them), sort
    by pid ascending or name (case-insensitive, then pid) here."""
    kept = [r for r in rows if matches(r, needle)]
    if sort == "pid":
        kept.sort(key=lambda r: number(r.get("pid")) or 0.0)
    elif sort == "name":
        kept.sort(key=lambda r: (str(r.get("name") or "").casefold(), number(r.get("pid")) or 0))
    return kept


def process_cells(row: Mapping[str, Any], command_width: int = 80) -> tuple[str, ...]:
    pid = number(row.get("pid"))
    threads = number(row.get("threads"))
    return (
        MISSING if pid is None else f"{pid:.0f}",
        shorten(str(row.get("user") or MISSING), 10),
        fmt_number(number(row.get("cpu_percent")), 1),
        fmt_number(number(row.get("memory_percent")), 1),
        fmt_bytes(number(row.get("rss_bytes"))),
        MISSING if threads is None else f"{threads:.0f}",
        str(row.get("status") or MISSING)[:1].upper(),
        shorten(str(row.get("name") or MISSING), 24),
        shorten(str(row.get("cmdline") or ""), command_width),
    )
