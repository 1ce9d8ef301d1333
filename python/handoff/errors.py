"""The one user-facing error type."""

from __future__ import annotations


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

        return redact(" ".join(text.split()))

    exit_code = 2


class RuleViolation(HandoffError):
    """A rule of the mesh refused the request (e.g. a domain bound to another dbt project): the
    input is well-formed but not allowed. The CLI prints it on one line and exits 1."""

    exit_code = 1
