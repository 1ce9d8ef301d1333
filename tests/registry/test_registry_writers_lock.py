"""SQLite registries: handoff's writers take turns on a lock file beside the database
(``engine.sqlite_writer_turn``), so a writer that has waited long is not starved by newcomers the
way SQLite's backing-off busy handler starves it (docs/registry.md, "Concurrency")."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest
from handoff.registry.engine import WRITERS_LOCK_SUFFIX, WritersLockTimeout, sqlite_writer_turn
from handoff.registry.store import Registry


def _held_elsewhere(lock: Path) -> bool:
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_write_waits_for_its_turn_and_then_goes_through(tmp_path: Path, plans) -> None:
    db = tmp_path / "registry.db"
    lock = Path(f"{db}{WRITERS_LOCK_SUFFIX}")
    Registry(f"sqlite:///{db}").close()  # created (its migrations were a write: the lock file exists)
    assert lock.is_file()
    results: list[object] = []
    with sqlite_writer_turn(str(db)):
        assert _held_elsewhere(lock)
        with pytest.raises(WritersLockTimeout, match="database is locked"), sqlite_writer_turn(str(db), timeout=0):
            pass

        def publish() -> None:
            with Registry(f"sqlite:///{db}") as registry:
                results.extend(registry.publish([plans("shop")]))

        writer = threading.Thread(target=publish)
        writer.start()  # it waits for the turn held here (or has not reached it yet)
    writer.join(timeout=600)
    assert not writer.is_alive()
    assert [r.domain for r in results] == ["shop"]
    assert not _held_elsewhere(lock)  # released after the commit


def test_readers_and_in_memory_registries_take_no_turn(tmp_path: Path, plans) -> None:
    db = tmp_path / "registry.db"
    with Registry(f"sqlite:///{db}") as registry:
        registry.publish([plans("shop")])
    lock = Path(f"{db}{WRITERS_LOCK_SUFFIX}")
    with sqlite_writer_turn(str(db)):  # a writer holds it: reading is not held up
        with Registry(f"sqlite:///{db}", must_exist=True) as registry:
            assert "shop" in registry.mesh().domains
        assert _held_elsewhere(lock)
    with Registry("sqlite://") as memory:
        memory.publish([plans("shop")])
    assert not list(Path.cwd().glob(f"*{WRITERS_LOCK_SUFFIX}"))
