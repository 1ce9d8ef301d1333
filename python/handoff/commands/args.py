"""argparse ``type=`` checks shared by every command: an empty or special value is refused with
one line (argparse's own error, exit 2) instead of silently meaning something else.

* a path ('' or blanks would mean the current folder; NUL cannot be a path);
* a registry URL ('' would fall back to the default registry; ``sqlite://`` and ``:memory:``
  are an in-memory database that forgets everything when the command ends);
* any other value that must not be empty (``--at``, ``--since``, ``--label``...).
"""

from __future__ import annotations

import argparse


def _plain(text: str, what: str) -> str:
    from ..errors import has_control_character, shorten
    from ..redact import redact

    shown = shorten(redact(repr(text)))
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{what} is empty: give a value (an empty one is never a default)")
    if has_control_character(text):
        raise argparse.ArgumentTypeError(f"{what} {shown} holds a control character: remove it")
    if text != text.strip():
        raise argparse.ArgumentTypeError(f"{what} {shown} starts or ends with blanks: remove them")
    return text


def path(text: str) -> str:
    """A file or folder name."""
    return _plain(text, "the path")


def nonempty(text: str) -> str:
    """Any value that must say something."""
    return _plain(text, "the value")


def registry_url(text: str) -> str:
    """A registry URL that names a database that outlives the command."""
    from ..redact import redact

    _plain(text, "the registry URL")
    shown = redact(text)
    lowered = text.lower()
    database = lowered.split("?", 1)[0]
    if lowered.startswith("sqlite") and (database.rstrip("/").endswith(":") or ":memory:" in lowered
                                         or "mode=memory" in lowered):
        raise argparse.ArgumentTypeError(
            f"{shown} is an in-memory database, which forgets everything when the command ends: "
            "give a file (sqlite:///path/registry.db) or a server (postgresql://...)")
    return text
