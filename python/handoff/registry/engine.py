"""Registry URLs, engines, transactions and the retry policy.

Which database: ``--registry URL``, else ``$HANDOFF_REGISTRY_URL``, else ``sqlite:///.handoff/registry.db``
(relative to the current directory). SQLite and PostgreSQL are supported.

Transactions (docs/registry.md, "Concurrency"):
  * SQLite: WAL journal; writes start with ``BEGIN IMMEDIATE`` (one writer at a time, taken up
    front, so two writers never deadlock upgrading a read lock) and wait up to
    ``SQLITE_BUSY_TIMEOUT_S`` for the lock; reads see one consistent snapshot. handoff's writers
    first take turns on an OS lock beside the file (``<db>-writers.lock``, ``flock``), polled
    at one short constant interval: SQLite's own busy handler backs off to 100 ms between tries,
    so a writer that has waited long loses every race to a newcomer polling at 1 ms (under load
    one publish waited 52 s and two hit the busy timeout in a storm of 20 publishers).
  * PostgreSQL: writes run at READ COMMITTED and lock their domain's row first (``SELECT ... FOR
    UPDATE``), so publishers of different domains never wait for each other; reads run at
    REPEATABLE READ, so one command sees one snapshot.
  * Retry: a transaction that fails with a transient error (PostgreSQL serialization failure
    40001, deadlock 40P01, lock not available 55P03, a dropped connection; SQLite "database is
    locked"/busy) is run again from the start, up to ``RETRY_ATTEMPTS`` times in all, after
    ``RETRY_BASE_S * 2**(attempt-1)`` seconds (capped at ``RETRY_MAX_S``) with ±50 % jitter.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..errors import HandoffError
from ..redact import redact

ENV_VAR = "HANDOFF_REGISTRY_URL"
DEFAULT_URL = "sqlite:///.handoff/registry.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
SQLITE_TURN_POLL_S = 0.002  # every waiting writer polls the writers' lock at this one interval
WRITERS_LOCK_SUFFIX = "-writers.lock"
PG_CONNECT_TIMEOUT_S = 10
RETRY_ATTEMPTS = 8
RETRY_BASE_S = 0.05
RETRY_MAX_S = 2.0
RETRYABLE_PG_CODES = frozenset({"40001", "40P01", "55P03"})
URL_HINT = ("give a URL such as sqlite:///path/to/registry.db or postgresql://user:password@host:5432/dbname "
            f"(--registry or ${ENV_VAR})")

T = TypeVar("T")


class RegistryUnavailable(HandoffError):
    """The registry cannot be reached or opened (no file, server down, refused login), or a query
    failed in the database: the service is unavailable, the request itself may be fine (the web
    app answers 503; the CLI, like any HandoffError, exits 2)."""


def resolve_url(given: str | None) -> str:
    """The registry URL: the --registry value, else $HANDOFF_REGISTRY_URL, else the default."""
    return given or os.environ.get(ENV_VAR) or DEFAULT_URL


def mask(url: str | URL) -> str:
    """The URL as messages show it: passwords (user info, ``?password=`` and the like) replaced by
    ***.

    A string is shown as the redaction of the raw text (``handoff.redact``), never re-rendered from
    a parsed URL: a parser may split an unencoded ``@``/``/`` in a password differently (SQLAlchemy
    took ``p@ss/word@host`` as password ``p``, host ``ss``) and its rendering then shows the
    password's tail as host and database."""
    if isinstance(url, URL):
        return redact(url.render_as_string(hide_password=True))
    return redact(url)


# scheme://user:PASSWORD@... — the password as handoff.redact reads it: up to the LAST '@'
_RAW_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/]*:(?P<password>[^\s]*)@[^@]*")


def _refuse_ambiguous_password(url: str, parsed: URL, shown: str) -> None:
    """A URL whose password the driver would read differently from the raw text (an unencoded
    ``@`` with a ``/`` or ``:`` in it) is refused before anything connects: the driver's own
    errors would then quote pieces of the password as host or database names."""
    match = _RAW_PASSWORD.fullmatch(url)
    if match is None:
        return
    if unquote(match.group("password")) != (parsed.password or ""):
        raise HandoffError(f"registry URL {shown}: the password holds characters that split the URL "
                           "(an unencoded '@' next to '/', ':', '?' or another '@')",
                           hint="percent-encode the password in the URL ('@' as %40, '/' as %2F, ':' as %3A), "
                                "or use a password without them")


def open_engine(url: str, *, must_exist: bool = False, create_default_dir: bool = True,
                read_only: bool = False) -> Engine:
    """An engine for the registry at ``url``; raises a one-line HandoffError when it cannot be used.

    ``must_exist``: a SQLite file that does not exist is an error (read commands never create one).
    The default URL's ``.handoff/`` folder is created when ``create_default_dir`` and not ``must_exist``.
    ``read_only`` (implies ``must_exist``): the database is opened so that nothing can be written —
    SQLite ``mode=ro`` (and ``immutable=1`` when the file's folder is not writable by this user, where
    SQLite could not create its WAL index; nobody is expected to write it then), PostgreSQL
    ``default_transaction_read_only``. What read commands use: a read-only role or folder suffices.
    """
    must_exist = must_exist or read_only
    shown = mask(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise HandoffError(f"registry URL {shown} is malformed ({exc})", hint=URL_HINT) from None
    _refuse_ambiguous_password(url, parsed, shown)
    backend = parsed.get_backend_name()
    if backend == "postgres":
        raise HandoffError(f"registry URL {shown} uses the scheme 'postgres'", hint="write postgresql:// instead")
    if backend not in ("sqlite", "postgresql"):
        raise HandoffError(f"registry URL {shown}: '{backend}' databases are not supported",
                           hint="use SQLite (sqlite:///path/registry.db) or PostgreSQL (postgresql://...)")
    if backend == "sqlite":
        _check_sqlite_path(url, parsed, must_exist=must_exist, create_default_dir=create_default_dir)
        if read_only:
            parsed = _read_only_sqlite(parsed)
    try:
        engine = _create(parsed, read_only=read_only)
    except NoSuchModuleError as exc:
        raise HandoffError(f"registry URL {shown}: no driver '{parsed.drivername}' ({exc})", hint=URL_HINT) from None
    except ModuleNotFoundError as exc:
        raise HandoffError(f"registry URL {shown} needs the Python module '{exc.name}'",
                           hint="pip install 'handoff[postgres]' (psycopg2-binary)") from None
    except (ArgumentError, TypeError, ValueError) as exc:
        raise HandoffError(f"registry URL {shown} is malformed ({exc})", hint=URL_HINT) from None
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            with engine.connect() as conn:
                if backend == "sqlite":
                    conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
            return engine
        except DBAPIError as exc:
            # A new SQLite file being switched to WAL by another process answers "locked": retry.
            if backend == "sqlite" and attempt < RETRY_ATTEMPTS and is_transient(exc):
                time.sleep(_backoff(attempt))
                continue
            engine.dispose()
            raise RegistryUnavailable(f"cannot open registry {shown}: {_first_line(exc)}",
                               hint="check the URL (--registry / $HANDOFF_REGISTRY_URL), that the server is "
                                    "running and accepts this user, and that the database exists") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _check_sqlite_path(url: str, parsed: URL, *, must_exist: bool, create_default_dir: bool) -> None:
    database = parsed.database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if must_exist and not path.is_file():
        raise RegistryUnavailable(f"no registry at {mask(url)} (file {path} does not exist)",
                           hint="publish plans first (`handoff publish`), or point --registry / "
                                f"${ENV_VAR} at the shared registry")
    if path.parent.is_dir():
        return
    if url == DEFAULT_URL and create_default_dir and not must_exist:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    raise HandoffError(f"registry URL {mask(url)}: folder {path.parent} does not exist",
                       hint="create the folder, or fix the path (sqlite:///relative/path.db, "
                            "sqlite:////absolute/path.db)")


def _read_only_sqlite(parsed: URL) -> URL:
    """The SQLite URL as a read-only URI (``file:PATH?mode=ro``; ``&immutable=1`` in a read-only folder)."""
    database = parsed.database or ""
    if database.startswith("file:"):
        return parsed  # already a URI: the user chose its mode
    path = Path(database).resolve()
    query = {**parsed.query, "mode": "ro", "uri": "true"}
    if not os.access(path.parent, os.W_OK):
        query["immutable"] = "1"
    return parsed.set(database=f"file:{quote(str(path), safe='/')}", query=query)


def _create(parsed: URL, *, read_only: bool = False) -> Engine:
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername=f"postgresql+{_installed_pg_driver()}")
        args: dict[str, Any] = {}
        if parsed.get_driver_name() in ("psycopg2", "psycopg"):
            args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
            if read_only:
                args["options"] = "-c default_transaction_read_only=on"
        # No pool_pre_ping (a round trip per transaction): a connection dropped while pooled fails
        # its transaction as "invalidated", which the retry policy runs again on a new connection.
        return create_engine(parsed, connect_args=args)
    memory = not parsed.database or parsed.database == ":memory:"
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
                           **({"poolclass": StaticPool} if memory else {}))
    event.listen(engine, "connect", _sqlite_connect_read_only if read_only else _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _installed_pg_driver() -> str:
    """SQLAlchemy 2.1 maps plain postgresql:// to psycopg (3); use psycopg2 when only it is installed."""
    import importlib.util

    for module in ("psycopg", "psycopg2"):
        if importlib.util.find_spec(module) is not None:
            return module
    return "psycopg2"  # create_engine then names the missing module


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (_sqlite_begin)
    cursor = dbapi_connection.cursor()
    # WAL is a property of the file: switch once (it takes an exclusive lock), not at every connect.
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() not in ("wal", "memory"):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_connect_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves; the journal mode is left alone


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("handoff_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="READ COMMITTED" if write else "REPEATABLE READ")
            turn: Any = nullcontext()
        else:
            conn = conn.execution_options(handoff_write=write)
            turn = sqlite_writer_turn(engine.url.database) if write else nullcontext()
        with turn, conn.begin():
            yield conn


@contextmanager
def sqlite_writer_turn(database: str | None, timeout: float = SQLITE_BUSY_TIMEOUT_S) -> Iterator[None]:
    """Hold the writers' lock of the SQLite file ``database`` (module doc); a no-op in memory.

    Waits up to ``timeout`` seconds, then raises ``WritersLockTimeout`` — transient, so ``run``
    retries the transaction. The lock is released when the block ends, and
    by the kernel when the process dies.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    path = f"{database}{WRITERS_LOCK_SUFFIX}"
    try:  # read-only is enough for flock; created like the database (umask)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as exc:
        hint = "the registry's folder must be writable by every writer (SQLite needs it too)"
        raise HandoffError(f"cannot open the registry's writers lock {path}: {exc.strerror}", hint=hint) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WritersLockTimeout(f"database is locked: no turn on {path} in {timeout:.0f}s") from None
                time.sleep(SQLITE_TURN_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


class WritersLockTimeout(Exception):
    """No turn on a SQLite registry's writers lock in time (transient: the transaction is retried)."""


class RetryStats:
    """How many transactions were re-run (exposed for reporting and tests)."""

    def __init__(self) -> None:
        self.retries = 0
        self.reasons: list[str] = []


def run(engine: Engine, work: Callable[[Connection], T], *, write: bool, what: str, shown_url: str,
        stats: RetryStats | None = None) -> T:
    """``work`` in one transaction, re-run on transient errors (the retry policy above)."""
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            with transaction(engine, write=write) as conn:
                return work(conn)
        except WritersLockTimeout as exc:
            if attempt < RETRY_ATTEMPTS:
                if stats is not None:
                    stats.retries += 1
                    stats.reasons.append(str(exc))
                time.sleep(_backoff(attempt))
                continue
            raise HandoffError(f"registry {shown_url}: {what} failed after {attempt} attempts: {exc}",
                               hint="nothing was changed; another writer holds the registry: retry later") from None
        except DBAPIError as exc:
            if attempt < RETRY_ATTEMPTS and is_transient(exc):
                if stats is not None:
                    stats.retries += 1
                    stats.reasons.append(_first_line(exc))
                time.sleep(_backoff(attempt))
                continue
            raise _as_handoff_error(exc, what, shown_url, attempt) from None
        except SQLAlchemyError as exc:
            raise HandoffError(f"registry {shown_url}: {what} failed: {exc}",
                               hint="this is a bug in handoff; please report it") from None
        except ValueError as exc:
            if not is_refused_value(exc):
                raise
            raise HandoffError(f"registry {shown_url}: {what} failed: a value holds a character the database "
                               f"cannot store ({_first_line(exc)})",
                               hint="remove NUL and other control characters from names and search terms") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, with ±50 % jitter."""
    return min(RETRY_MAX_S, RETRY_BASE_S * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not a secret


def is_transient(exc: DBAPIError) -> bool:
    """Whether re-running the whole transaction may succeed."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if code is not None:
        return code in RETRYABLE_PG_CODES
    text = str(orig).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def is_refused_value(exc: ValueError) -> bool:
    """Whether the driver refused a parameter before sending it: psycopg2 ("A string literal
    cannot contain NUL (0x00) characters") and psycopg 3 ("PostgreSQL text fields cannot contain
    NUL (0x00) bytes") raise a plain ValueError, not a DBAPIError, for a NUL in a string."""
    return "NUL (0x00)" in str(exc)


def _as_handoff_error(exc: DBAPIError, what: str, shown_url: str, attempts: int) -> HandoffError:
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    return RegistryUnavailable(f"registry {shown_url}: {what} failed{tried}: {_first_line(exc)}",
                        hint="nothing was changed; retry later, and check the database is reachable and writable")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__
