"""Name -> collector class registry, discovered from this package's modules.

``@register("cpu")`` only *marks* a class (no module-level mutable registry). ``discover``
imports every module of ``sysmon.collectors`` (``pkgutil.iter_modules``) and builds a fresh
``CollectorRegistry`` from the marked classes, failing loudly on a duplicate name. Adding a
metric type therefore means adding one module here; nothing else is edited by hand.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, TypeVar

from pydantic import ValidationError

from sysmon.collectors.base import Collector, CollectorFactory
from sysmon.errors import ConfigError

_MARK = "__sysmon_collector__"
T = TypeVar("T")


class DuplicateCollectorError(ValueError):
    pass


def register(name: str) -> Callable[[T], T]:
    """Mark a collector class under ``name``; ``discover`` picks it up."""

    def mark(cls: T) -> T:
        setattr(cls, _MARK, name)
        cls.name = name  # type: ignore[attr-defined]
        return cls

    return mark


class CollectorRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, CollectorFactory] = {}

    def add(self, factory: Any) -> None:
        name = getattr(factory, _MARK, None) or getattr(factory, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"{factory!r} is not a registered collector")
        existing = self._factories.get(name)
        if existing is not None and existing is not factory:
            raise DuplicateCollectorError(
                f"collector name {name!r} registered twice: {existing!r} and {factory!r}"
            )
        self._factories[name] = factory

    def get(self, name: str) -> CollectorFactory:
        return self._factories[name]

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[CollectorFactory]:
        return iter(self._factories[n] for n in self.names())

    def build(self, sections: Mapping[str, Mapping[str, Any]], source: Any) -> dict[str, Collector]:
        """Instantiate every enabled collector from its config section (``collectors.<name>``).

        A collector without a section runs with its defaults. An unknown name or a bad
        option raises ``ConfigError`` naming the dotted key.
        """
        unknown = sorted(set(sections) - set(self._factories))
        if unknown:
            raise ConfigError(
                f"collectors.{unknown[0]}", f"unknown collector; known: {self.names()}"
            )
        collectors: dict[str, Collector] = {}
        for factory in self:
            try:
                options = factory.Options.model_validate(sections.get(factory.name) or {})
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
                key = f"collectors.{factory.name}" + (f".{loc}" if loc else "")
                raise ConfigError(key, msg) from None
            if options.enabled:
                collectors[factory.name] = factory(source, options)
        return collectors


def _marked_classes(module: ModuleType) -> Iterator[Any]:
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if obj.__module__ == module.__name__ and hasattr(obj, _MARK):
            yield obj


def discover(package: str = "sysmon.collectors", plugins: Sequence[str] = ()) -> CollectorRegistry:
    """Import every module of ``package`` and register the marked collector classes,
    then those of each ``plugins`` module (``collection.plugins``: third-party
    collectors, registered the same way)."""
    registry = CollectorRegistry()
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        for cls in _marked_classes(module):
            registry.add(cls)
    for name in plugins:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError("collection.plugins", f"cannot import {name!r}: {exc}") from None
        for cls in _marked_classes(module):
            registry.add(cls)
    return registry
