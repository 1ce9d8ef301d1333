"""Reading and writing handoff's files: JSON in, whole files out, one-line errors either way.

Reading (``read_regular_bytes``, under ``read_json``): only a **regular file** is read. The path is
``stat``ed first and opened ``O_NONBLOCK`` (then checked again on the open descriptor), so a FIFO,
a device or a socket named like a plan is refused at once ("… not a regular file") instead of
blocking the reader — a DAG file stuck on a FIFO until Airflow's import timeout would lose every
domain's DAGs. Then (``read_json``): a missing file, a folder, no permission, bytes that are not UTF-8, text
that is not JSON, NaN/Infinity (not JSON), integers beyond Python's digit limit and nesting too
deep to decode are each one ``HandoffError`` naming the file and what to do.

Writing (``write_atomically``), decided in docs/decisions.md (D13):
* the text goes to a temporary file in the target's folder, is flushed and ``fsync``ed, renamed
  over the target, and the folder is ``fsync``ed: a reader sees the old file or the new one, a
  crash leaves no half-written target;
* a new file gets ``0o666 & ~umask`` (what ``open()`` would give), an existing file keeps its mode;
  a plan or snapshot written under umask 022 is readable by an Airflow running as another user;
* only **regular files** are written, new or existing, in **existing folders**
  (``output_target``): a FIFO, a device, a socket or a folder at the path (or at the end of its
  links) is refused with one line naming the path, and so is a missing folder — handoff never
  creates folders for an output, so a dangling link cannot make it create its target's parents.
  ``-o DIR/`` (compile, snapshot: a trailing ``/`` names a folder) creates ``DIR`` itself when its
  parent exists (``folder_output``), nothing more;
  ``-o -`` means standard output (``STDOUT``) where a command can write text there;
  ``/dev/stdout`` is not a regular file and is refused with that hint;
* a symbolic link is written **through**: the file it points to is replaced (atomically, in the
  link target's folder) and the link stays a link;
* temporary files are removed when the write fails or is interrupted (also on SIGTERM while the
  write runs); those a SIGKILL left behind are removed by the next write to the same folder;
* an ``OSError`` becomes "cannot write PATH: reason — nothing written".
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import HandoffError

TEMP_SUFFIX = ".handoff-tmp"
STALE_TEMP_S = 600.0  # a temporary file this old is left over from a killed writer


class NotRegularFileError(OSError):
    """Raised by ``read_regular_bytes`` for a FIFO, a device or a socket (``strerror`` says which)."""


def read_regular_bytes(path: str | Path) -> bytes:
    """The bytes of the regular file at ``path`` (links followed), never blocking on what is not one.

    Raises ``OSError``: ``IsADirectoryError`` for a folder, ``NotRegularFileError`` for a FIFO, a
    device or a socket (neither is opened for a blocking read), the usual errors otherwise."""
    mode = os.stat(path).st_mode
    _refuse_unless_regular(mode, path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _refuse_unless_regular(os.fstat(fd).st_mode, path)  # replaced between the stat and the open
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _refuse_unless_regular(mode: int, path: str | Path) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(errno.EINVAL, f"{_not_regular(mode)}, not a regular file", str(path))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json(path: str | Path, *, what: str = "file", hint: str | None = None, allow_nan: bool = False) -> Any:
    """The decoded JSON of ``path``; any problem is a one-line HandoffError naming it.

    ``allow_nan``: accept NaN/Infinity (Python's json writes them; dbt may, in a meta value)."""
    data, _ = read_json_bytes(path, what=what, hint=hint, allow_nan=allow_nan)
    return data


def read_json_bytes(path: str | Path, *, what: str = "file", hint: str | None = None,
                    allow_nan: bool = False) -> tuple[Any, bytes]:
    """``read_json`` that also returns the raw bytes (for hashing)."""
    path = Path(path)
    where = str(path)
    try:
        raw = read_regular_bytes(path)
    except FileNotFoundError:
        raise HandoffError(f"{what} not found", where=where, hint=hint) from None
    except IsADirectoryError:
        raise HandoffError(f"is a folder, not a {what}", where=where, hint=hint) from None
    except PermissionError:
        raise HandoffError(f"cannot read the {what}: permission denied", where=where,
                           hint="make it readable by this user (docs/deployment.md lists who reads what)") from None
    except NotRegularFileError as exc:
        raise HandoffError(f"cannot read the {what}: {exc.strerror}", where=where,
                           hint=f"give the path of a {what} (a regular file)") from None
    except OSError as exc:
        raise HandoffError(f"cannot read the {what}: {exc.strerror or exc}", where=where, hint=hint) from None
    return decode_json(raw, where, what=what, hint=hint, allow_nan=allow_nan), raw


def decode_json(raw: bytes, where: str, *, what: str = "file", hint: str | None = None,
                allow_nan: bool = False) -> Any:
    """Decode JSON bytes read from ``where`` (see ``read_json``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HandoffError(f"the {what} is not UTF-8 text (byte {exc.start})", where=where, hint=hint) from None
    try:
        return json.loads(text) if allow_nan else json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise HandoffError(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
                           where=where, hint=hint) from None
    except RecursionError:
        raise HandoffError(f"the {what} is nested too deeply to read", where=where, hint=hint) from None
    except ValueError as exc:  # NaN/Infinity, integers over the digit limit
        raise HandoffError(f"not valid JSON ({_clip(str(exc))})", where=where, hint=hint) from None


def _clip(text: str, limit: int = 120) -> str:
    """``text`` on one line, at most ``limit`` characters, cut at a word boundary (never mid-word)."""
    words = text.split()
    if "int_max_str_digits" in text or "integer string conversion" in text:  # Python's digit limit
        found = re.findall(r"\d+", text)  # "Exceeds the limit (4300 digits) …: value has 5000 digits; use …"
        return (f"an integer has {found[1]} digits, more than the {found[0]} Python reads" if len(found) >= 2
                else "an integer has more digits than Python reads")
    line = " ".join(words)
    if len(line) <= limit:
        return line
    cut = line[: limit + 1].rsplit(" ", 1)[0]
    return f"{cut} …"


def dumps_strict(data: Any, **kwargs: Any) -> str:
    """``json.dumps`` that refuses NaN and Infinity (they are not JSON) with a one-line error."""
    try:
        return json.dumps(data, allow_nan=False, **kwargs)
    except ValueError as exc:
        raise HandoffError(f"cannot write JSON: {exc}", hint="a value is NaN or Infinity; fix the input") from None


def check_output_path(text: str, option: str) -> Path:
    """An output path given on the command line: refuses '' and whitespace (which would mean the
    current folder) and NUL."""
    if not text or not text.strip() or text != text.strip() or "\0" in text:
        raise HandoffError(f"{option} {text!r} is not a path", hint=f"give {option} a file or folder name")
    return Path(text)


STDOUT = "-"  # ``-o -``: standard output


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str:
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def output_target(path: str | Path) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or where its symbolic links end.

    Refused with one line "cannot write PATH: … — nothing written" (HandoffError, exit 2): a path
    that is (or whose links end at) a folder, a FIFO, a device or a socket, whose folder does not
    exist (handoff never creates folders: a dangling link to /missing/dir/x would otherwise create
    /missing/dir), or that cannot be looked at. Checks only: nothing is created."""
    shown = str(path)
    if not shown or "\0" in shown:
        raise HandoffError(f"{shown!r} is not a path", hint="give a file name")
    given = Path(path)
    if shown.endswith(("/", os.sep)) and not given.is_dir():
        raise HandoffError(f"cannot write {shown}: the folder {given} does not exist — nothing written",
                           hint="handoff writes into existing folders only: create it first")
    try:
        target = Path(os.path.realpath(given)) if given.is_symlink() else given
        try:
            mode: int | None = os.stat(target).st_mode
        except FileNotFoundError:
            mode = None
        if mode is None:
            folder = target.parent
            if not folder.is_dir():
                where = f"the folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
                raise HandoffError(f"cannot write {shown}: {where} — nothing written",
                                   hint="handoff writes into existing folders only: create it first")
        elif stat.S_ISDIR(mode):
            raise HandoffError(f"cannot write {shown}: is a folder — nothing written",
                               hint="give a file name (or a folder ending in '/' where the command takes one)")
        elif not stat.S_ISREG(mode):
            raise HandoffError(f"cannot write {shown}: {_not_regular(mode)}, not a regular file — nothing written",
                               hint=f"handoff writes regular files only; use '-o {STDOUT}' for standard output "
                                    "where the command offers it")
    except OSError as exc:
        raise HandoffError(f"cannot write {shown}: {exc.strerror or exc} — nothing written",
                           hint="check the folder exists, is writable and has space") from None
    return target


def folder_output(folder: str | Path, file_name: str) -> Path:
    """``FOLDER/file_name`` for an output given as a folder (``-o DIR/``, compile and snapshot).

    The explicit folder form is the one case where handoff creates a folder: ``DIR`` itself, never
    its parents (a missing parent is one line), and never through a dangling link."""
    shown = str(folder)
    path = Path(folder)
    if not path.is_dir():
        if not path.parent.is_dir():
            raise HandoffError(f"cannot write {shown}: the folder {path.parent} does not exist — nothing written",
                               hint="handoff creates only the last folder of -o DIR/: create the others first")
        try:
            path.mkdir()
        except OSError as exc:
            raise HandoffError(f"cannot write {shown}: {exc.strerror or exc} — nothing written",
                               hint="give an existing folder, or a new one inside an existing folder") from None
    return path / file_name


def write_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` as described in the module docstring; returns the path written
    (the link's target when ``path`` is a symbolic link)."""
    shown = str(path)
    if not shown or "\0" in shown:
        raise HandoffError(f"{shown!r} is not a path", hint="give a file name")
    target = output_target(path)
    data = text.encode("utf-8")
    try:
        _remove_stale_temps(target.parent)
        mode = _mode_for(target)
        with _removed_on_failure(target) as (fd, tmp):
            try:
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        _fsync_folder(target.parent)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise HandoffError(f"cannot write {shown}: {reason} — nothing written",
                           hint="check the folder exists, is writable and has space") from None
    return target


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = _current_umask()
        return 0o666 & ~umask


_UMASK_LOCK = threading.Lock()


def _current_umask() -> int:
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


@contextlib.contextmanager
def _removed_on_failure(target: Path) -> Iterator[tuple[int, str]]:
    """A new temporary file (fd, name) next to ``target``; removed unless renamed, also on SIGTERM."""
    previous = _terminate_as_exception()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=target.parent)
        yield fd, tmp
    except _Terminated:
        with contextlib.suppress(OSError):
            if tmp is not None:
                os.unlink(tmp)
        os.kill(os.getpid(), signal.SIGTERM)  # the default action, now that nothing is left behind
        raise
    finally:
        with contextlib.suppress(OSError):
            if tmp is not None:
                os.unlink(tmp)
        if previous is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    pass


def _terminate_as_exception() -> Any:
    """While a write runs in the main thread with the default SIGTERM action, SIGTERM raises
    (so the temporary file is removed) and then terminates as it would have."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return None

        def raise_terminated(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            raise _Terminated

        return signal.signal(signal.SIGTERM, raise_terminated)
    except (ValueError, OSError):
        return None


def _remove_stale_temps(folder: Path) -> None:
    """Temporary files of killed writers: older than STALE_TEMP_S, or of a dead process on this host."""
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            pid = int(entry.name[: -len(TEMP_SUFFIX)].rsplit(".", 2)[-2])
        except (OSError, ValueError, IndexError):
            continue
        if age > STALE_TEMP_S or (age > 5 and not _alive(pid)):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some platforms/filesystems cannot open folders: the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
