"""Command lines handoff builds (for dbt): every option is handoff's own, every value is checked.

Plan text (a project folder, a selector, a test name, a var) may only ever be the *value* of an
option handoff chose. ``option("--select", *names)`` refuses a value that starts with ``-`` (dbt
would read it as an option: ``--full-refresh``, ``--profiles-dir=elsewhere``), is empty, or holds
a control character. Use it wherever an argv is assembled, so the guard does not depend on how a
value was produced (a validated plan, a plan read with validation off, a snapshot, dag-run conf).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import HandoffError

_OPTION = re.compile(r"--[a-z][a-z0-9]*(-[a-z0-9]+)*")


def checked_values(values: Iterable[str], *, option: str) -> list[str]:
    """``values`` unchanged if each is a safe argv value for ``option``; else a one-line HandoffError."""
    found = list(values)
    for value in found:
        if not isinstance(value, str) or not value:
            raise HandoffError(f"empty value for {option}", where="dbt command line",
                               hint="the plan or settings hold an empty name: re-compile the plan")
        if value.startswith("-"):
            raise HandoffError(f"{value!r} would reach dbt as an option, not as a value of {option}",
                               where="dbt command line",
                               hint="names in plans never start with '-': re-compile the plan")
        if any(ord(c) < 32 or c == "\x7f" for c in value):
            raise HandoffError(f"{value!r} holds a control character (value of {option})",
                               where="dbt command line", hint="re-compile the plan")
    return found


def option(name: str, *values: str) -> list[str]:
    """``[name, *values]`` for an option handoff puts on a command line (``name`` is a literal of ours)."""
    if not _OPTION.fullmatch(name):
        raise ValueError(f"not an option name: {name!r}")
    return [name, *checked_values(values, option=name)]
