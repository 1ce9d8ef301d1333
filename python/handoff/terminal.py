"""Text for a terminal (pure): control characters from untrusted input shown, never obeyed.

Meta values, plan fields and registry rows reach ``check``, ``explain`` and other commands' output.
``validate`` refuses control characters in free-text meta values (docs/convention.md), but a plan
or a registry row may have been written otherwise; ``visible`` is the defence on output: an escape
sequence (``\\x1b[31m``), a carriage return or a NUL is printed as its ``\\x..`` escape.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def visible(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character (C0, DEL, C1) as ``\\xNN``; ``newlines=True`` keeps
    ``\\n`` (for a multi-line report whose own lines are handoff's)."""
    pattern = _CONTROL_BUT_NEWLINE if newlines else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
