"""Which ``Host`` names the API serves (``HostPolicy``): loopback names always, plus
the configured ones. Why a Host check at all: ``sysmon.security.http``. Kept apart from
that middleware so that ``sysmon serve`` can check its bind address without importing
FastAPI into the process both children are forked from (the agent never uses it)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass


def normalize_host(value: str) -> str | None:
    """The name or address in a ``Host`` header, lower case, without port, brackets or a
    trailing dot; ``None`` when malformed (a bad port, an unbracketed IPv6 address)."""
    host = value.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        name, rest = host[1:end], host[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return name or None
    name, sep, port = host.partition(":")
    if sep and not port.isdigit():
        return None  # also catches a second ':' (an IPv6 address needs brackets)
    name = name.removesuffix(".")
    return name or None


def is_loopback_host(name: str) -> bool:
    """``localhost``, ``*.localhost`` (RFC 6761: browsers resolve them to loopback
    themselves, never through DNS), ``127.0.0.0/8``, ``::1`` (and IPv4-mapped 127.x)."""
    name = name.lower().removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` names are served: loopback always, plus configured names."""

    exact: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    any_name: bool = False

    @classmethod
    def build(cls, allowed: Iterable[str]) -> HostPolicy:
        exact: set[str] = set()
        suffixes: list[str] = []
        any_name = False
        for pattern in allowed:
            item = pattern.strip().lower().removesuffix(".")
            if item == "*":
                any_name = True
            elif item.startswith("*."):
                suffixes.append(item[1:])  # ".example.com": subdomains, not the apex
            else:
                exact.add(item.strip("[]"))
        return cls(frozenset(exact), tuple(suffixes), any_name)

    def allows(self, header: str | None) -> bool:
        if header is None:
            return False
        name = normalize_host(header)
        if name is None:
            return False
        if self.any_name or is_loopback_host(name) or name in self.exact:
            return True
        return any(name.endswith(suffix) for suffix in self.suffixes)
