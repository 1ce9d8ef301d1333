"""Running a command as a user who cannot write where the test says (read-only folders).

As root (CI runs `make test` as root), permissions do not stop anything, so the command runs as
`nobody` through `setpriv`; as any other user it runs as that user. The folders handed to such a
command must be world-readable: make them with ``world_readable_dir`` (pytest's tmp dirs are 0700).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOBODY = 65534


def unprivileged(argv: Sequence[str]) -> list[str]:
    """``argv`` run as a user that folder permissions apply to."""
    if os.geteuid() != 0:
        return list(argv)
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop root for read-only tests"
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def run_unprivileged(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(unprivileged(argv), capture_output=True, text=True, timeout=120, **kwargs)


@contextmanager
def world_readable_dir(prefix: str) -> Iterator[Path]:
    """A fresh folder (0755) under the system temp dir, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for root, dirs, _ in os.walk(folder):
            for name in dirs:
                Path(root, name).chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)
