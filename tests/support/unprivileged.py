"""Running a command that must find a folder read-only.

Folder permissions do not stop root (CI runs `make test` as root), so as root the command runs in
its own mount namespace where the folder is bind-mounted read-only (`unshare -m`, util-linux);
as any other user the folder is made 0555 for the duration. Either way the command really meets
EROFS/EACCES, as a CI job with a read-only checkout or a service user would.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_BIND_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


@contextmanager
def read_only_folder(folder: Path) -> Iterator[Callable[[Sequence[str]], list[str]]]:
    """Yields ``wrap(argv) -> argv`` that runs ``argv`` seeing ``folder`` read-only."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode & 0o7777
        folder.chmod(0o555)
        try:
            yield list
        finally:
            folder.chmod(mode)
        return
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to give root a read-only folder"

    def wrap(argv: Sequence[str]) -> list[str]:
        return [unshare, "-m", "--", "sh", "-c", _BIND_READ_ONLY, str(folder), *argv]

    yield wrap
