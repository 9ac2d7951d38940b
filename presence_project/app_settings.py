"""Typed per-app settings: each app declares its tunables as a frozen dataclass and reads
them through one accessor, built here, instead of looking names up in a dictionary.

A misspelt field fails type checking and tests, not the first request that reads it; the
dictionary is read once, and again after a test overrides it (`setting_changed`).
"""

import functools
from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

T = TypeVar("T")


def app_settings(name: str, kind: type[T]) -> Callable[[], T]:
    """An accessor of `settings.<name>`, a dictionary of upper-case keys, as a `kind` (a
    dataclass whose fields are the keys in lower case), read on first use."""

    @functools.cache
    def read() -> T:
        given: dict[str, Any] = {
            key.lower(): value for key, value in getattr(settings, name).items()
        }
        wanted = {field.name for field in fields(kind)}  # type: ignore[arg-type]
        unknown, missing = sorted(set(given) - wanted), sorted(wanted - set(given))
        if unknown or missing:
            raise ImproperlyConfigured(
                f"settings.{name}: unknown {', '.join(unknown).upper() or 'none'}; "
                f"missing {', '.join(missing).upper() or 'none'}"
            )
        return kind(**given)

    def reload(setting: str, **kwargs: Any) -> None:
        if setting == name:
            read.cache_clear()

    # The receiver lives as long as the accessor: a weak reference would drop it at once.
    setting_changed.connect(reload, weak=False)
    return read
