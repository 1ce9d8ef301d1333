"""The one user-facing error type, and how its line echoes input.

Echoed input is capped: in a one-line message every word (a run without blanks: a name, a path,
a value quoted back) longer than ``ECHO_LIMIT`` (200) characters is shown as its first and last
``ECHO_LIMIT // 2 - 10`` characters around "…(N characters)…", so a 100,000-character
``DOMAIN.MODEL`` costs one readable line, not 100 kB of terminal.
"""

from __future__ import annotations

ECHO_LIMIT = 200


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` with every word over ``limit`` characters cut to its head and tail (module docstring)."""
    keep = max(limit // 2 - 10, 1)

    def cut(word: str) -> str:
        return word if len(word) <= limit else f"{word[:keep]}…({len(word)} characters)…{word[-keep:]}"

    return " ".join(cut(word) for word in text.split())


def has_control_character(text: str) -> bool:
    """Whether ``text`` holds a control character (Unicode category Cc: NUL, tab, newline, DEL,
    C1 controls) or a lone surrogate (Cs): never part of a name, a search term or a date, and NUL
    is refused by PostgreSQL and truncates a SQLite pattern."""
    import unicodedata

    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


class HandoffError(Exception):
    """Bad input or a failed precondition the user can fix.

    ``where`` names the file, node or key; ``hint`` says what to do. The CLI prints
    ``str(error)`` on one line and exits 2. The line is redacted (``handoff.redact``): a URL or
    response body quoted in a message never shows a password or token.
    """

    def __init__(self, problem: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.problem = problem
        self.where = where
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.hint:
            text = f"{text} — {self.hint}"
        from .redact import redact

        return shorten(redact(" ".join(text.split())))

    exit_code = 2


class RuleViolation(HandoffError):
    """A rule of the mesh refused the request (e.g. a domain bound to another dbt project): the
    input is well-formed but not allowed. The CLI prints it on one line and exits 1."""

    exit_code = 1
