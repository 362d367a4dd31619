"""The one place where settings read the process environment.

A variable that is unset or set to the empty string takes the default. A value that cannot be
parsed raises ImproperlyConfigured naming the variable, the bad value and what was expected, so a
typo in a deployment fails at start-up instead of silently falling back.
"""

import os
from collections.abc import Iterable, Sequence

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def env_str(
    name: str, default: str | None = None, *, choices: Iterable[str] | None = None
) -> str | None:
    value = _raw(name)
    if value is None:
        return default
    if choices is not None:
        allowed = sorted(choices)
        if value not in allowed:
            raise ImproperlyConfigured(
                f"{name} must be one of {', '.join(allowed)}; got {value!r}."
            )
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name} must be a boolean ({', '.join(sorted(TRUE_WORDS))} or "
        f"{', '.join(sorted(FALSE_WORDS))}); got {value!r}."
    )


def env_int(
    name: str, default: int, *, min_value: int | None = None, max_value: int | None = None
) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value, 10)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {value!r}.") from None
    if min_value is not None and number < min_value:
        raise ImproperlyConfigured(f"{name} must be at least {min_value}; got {number}.")
    if max_value is not None and number > max_value:
        raise ImproperlyConfigured(f"{name} must be at most {max_value}; got {number}.")
    return number


def env_list(name: str, default: Sequence[str] = ()) -> list[str]:
    """Comma-separated items, whitespace around each item ignored, empty items dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]
