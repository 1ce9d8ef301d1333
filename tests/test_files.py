"""handoff.files: whole files or nothing, the umask honoured, links written through, temp files cleaned."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handoff import files
from handoff.errors import HandoffError


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(files.TEMP_SUFFIX))


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_honour_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        files.write_atomically(tmp_path / "a.plan.json", "{}\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.plan.json").stat().st_mode & 0o777 == mode


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "registry_snapshot.json"
    target.write_text("old")
    target.chmod(0o640)
    files.write_atomically(target, "new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "releases" / "finance.plan.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "finance.plan.json"
    link.symlink_to(real)
    written = files.write_atomically(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new" and written == real
    assert temps(tmp_path) == [] and temps(real.parent) == []


def test_file_and_folder_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", spy)
    files.write_atomically(tmp_path / "x.json", "{}")
    assert len(synced) == 2
    assert synced[0].endswith(files.TEMP_SUFFIX) and synced[1] == str(tmp_path)


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.json"
    target.write_text("old")

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "write", full)
    with pytest.raises(HandoffError) as caught:
        files.write_atomically(target, "new")
    assert f"cannot write {target}: No space left on device — nothing written" in caught.value.one_line()
    assert target.read_text() == "old" and temps(tmp_path) == []


def test_a_path_through_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(HandoffError, match="nothing written"):
        files.write_atomically(tmp_path / "file" / "x.json", "{}")
    with pytest.raises(HandoffError, match="is a folder"):
        files.write_atomically(tmp_path, "{}")


def _specials(folder: Path) -> dict[str, Path]:
    """A FIFO, a character device (made here, never a real /dev node; a FIFO when not root), a socket."""
    made = {"fifo": folder / "fifo", "device": folder / "device", "socket": folder / "socket"}
    os.mkfifo(made["fifo"])
    if os.geteuid() == 0:
        os.mknod(made["device"], 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        os.mkfifo(made["device"])
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(made["socket"]))
    return made


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
@pytest.mark.parametrize("through_link", [False, True])
def test_only_regular_files_are_written(tmp_path: Path, kind: str, through_link: bool) -> None:
    special = _specials(tmp_path)[kind]
    before = special.lstat()
    path = special
    if through_link:
        path = tmp_path / "link"
        path.symlink_to(special)
    with pytest.raises(HandoffError) as raised:
        files.write_atomically(path, "{}")
    line = raised.value.one_line()
    assert str(path) in line and "not a regular file" in line and "nothing written" in line, line
    assert "\n" not in line
    after = special.lstat()
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert temps(tmp_path) == []


def test_no_folder_is_created_for_an_output(tmp_path: Path) -> None:
    dangling = tmp_path / "l"
    dangling.symlink_to(tmp_path / "nonexist" / "dir" / "x.json")
    for path in (dangling, tmp_path / "nonexist" / "x.json", str(tmp_path / "nonexist") + "/"):
        with pytest.raises(HandoffError, match="does not exist — nothing written"):
            files.write_atomically(path, "{}")
    assert not (tmp_path / "nonexist").exists() and dangling.is_symlink()
    # a dangling link into an existing folder creates its target (written through)
    ok = tmp_path / "ok"
    ok.symlink_to(tmp_path / "target.json")
    assert files.write_atomically(ok, "{}") == tmp_path / "target.json" and ok.is_symlink()


def test_sigterm_during_a_write_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "big.plan.json"
    child = (
        "import os, signal, sys\n"
        "from handoff import files\n"
        "real = os.fsync\n"
        "def killed(fd):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "files.os.fsync = killed\n"
        f"files.write_atomically({str(target)!r}, 'x' * 1000000)\n"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_temp_files_of_killed_writers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    dead = tmp_path / f".a.plan.json.999999999.abcd{files.TEMP_SUFFIX}"
    old = tmp_path / f".b.plan.json.{os.getpid()}.efgh{files.TEMP_SUFFIX}"
    fresh = tmp_path / f".c.plan.json.{os.getpid()}.ijkl{files.TEMP_SUFFIX}"
    for path in (dead, old, fresh):
        path.write_text("partial")
    stamp = time.time() - 30
    os.utime(dead, (stamp, stamp))
    stamp = time.time() - files.STALE_TEMP_S - 5
    os.utime(old, (stamp, stamp))
    files.write_atomically(tmp_path / "d.plan.json", "{}")
    assert temps(tmp_path) == [fresh.name]  # a live writer's fresh temp file is left alone


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", "not valid JSON (Expecting value"),
    (b'{"a": NaN}', "NaN is not valid JSON"),
    (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_bad_json_is_one_line(tmp_path: Path, raw: bytes, expected: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(raw)
    with pytest.raises(HandoffError) as caught:
        files.read_json(path)
    assert expected in caught.value.one_line() and str(path) in caught.value.one_line()


def test_reading_a_folder_or_nothing(tmp_path: Path) -> None:
    with pytest.raises(HandoffError, match="is a folder"):
        files.read_json(tmp_path)
    with pytest.raises(HandoffError, match="not found"):
        files.read_json(tmp_path / "none.json")


def test_nan_is_refused_when_writing() -> None:
    with pytest.raises(HandoffError, match="NaN or Infinity"):
        files.dumps_strict({"relation": float("nan")})


def test_writing_into_a_read_only_folder_is_one_line_and_writes_nothing(fixture_manifest, tmp_path: Path) -> None:
    """`compile -o` and `snapshot --output` into a folder this user cannot write (a real EROFS/EACCES)."""
    from support.unprivileged import read_only_folder

    out = tmp_path / "deploy"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
    with read_only_folder(out) as wrap:
        done = subprocess.run(wrap([sys.executable, "-m", "handoff.cli", "compile", str(fixture_manifest("shapes")),
                                    "-o", f"{out}/"]), capture_output=True, text=True, env=env, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"cannot write {out}/shapes.plan.json" in lines[0] and "nothing written" in lines[0], lines[0]
    assert "Traceback" not in done.stderr and list(out.iterdir()) == []


def test_the_folder_form_creates_only_the_last_folder(tmp_path: Path) -> None:
    assert files.folder_output(f"{tmp_path}/plans/", "a.plan.json") == tmp_path / "plans" / "a.plan.json"
    assert (tmp_path / "plans").is_dir()
    with pytest.raises(HandoffError, match="does not exist — nothing written"):
        files.folder_output(f"{tmp_path}/x/y/", "a.plan.json")
    (tmp_path / "dangling").symlink_to(tmp_path / "nonexist" / "dir")
    with pytest.raises(HandoffError, match="nothing written"):
        files.folder_output(f"{tmp_path}/dangling/", "a.plan.json")
    assert not (tmp_path / "x").exists() and not (tmp_path / "nonexist").exists()


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_only_regular_files_are_read_and_a_fifo_never_blocks(tmp_path: Path, kind: str) -> None:
    special = _specials(tmp_path)[kind]
    link = tmp_path / "link.plan.json"
    link.symlink_to(special)
    previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
    signal.alarm(20)  # a blocking read of the FIFO would hang here: fail instead
    try:
        for path in (special, link):
            with pytest.raises(files.NotRegularFileError, match="not a regular file"):
                files.read_regular_bytes(path)
            with pytest.raises(HandoffError) as raised:
                files.read_json(path, what="plan")
            assert str(path) in raised.value.one_line() and "not a regular file" in raised.value.one_line()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    (tmp_path / "plain.json").write_text('{"a": 1}')
    assert files.read_regular_bytes(tmp_path / "plain.json") == b'{"a": 1}'
    with pytest.raises(IsADirectoryError):
        files.read_regular_bytes(tmp_path)
