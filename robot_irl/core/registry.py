"""Explicit registries: every name is registered in one place, an unknown name fails listing the known ones.

Entries may be lazy (``"module:attribute"``) so that listing drivers or policies imports none of their heavy
dependencies; the target is imported on first ``get``.
"""
from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _plural(word: str) -> str:
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


class UnknownNameError(LookupError):
    """A name that is not in a registry; the message lists the names that are."""


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: T | str) -> T | str:
        """Register ``obj`` (or a lazy ``"module:attr"`` string) under ``name``; duplicates are an error."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if isinstance(obj, str) and ":" not in obj:
            raise ValueError(f"lazy {self.kind} {name!r} must be 'module:attribute', got {obj!r}")
        self._entries[name] = obj
        return obj

    def get(self, name: str) -> T:
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known {_plural(self.kind)}: {known}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, attr = entry.split(":", 1)
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
