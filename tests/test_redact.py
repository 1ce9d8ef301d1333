"""handoff.redact: every credential shape is hidden, in messages, log lines and the CLI's last resort."""

from __future__ import annotations

import io
import logging

import pytest

from handoff import cli
from handoff.errors import HandoffError
from handoff.redact import MASK, get_logger, redact
from handoff.registry.engine import mask

SECRET = "hunter2-Zq9"

# (text holding SECRET, what must still be there)
SHAPES = {
    "url user info": (f"postgresql://alice:{SECRET}@db.internal:5432/handoff", "postgresql://alice:***@db.internal"),
    "unencoded @ in the password": (f"postgresql://alice:{SECRET}@tail@db:5432/x", "@db:5432/x"),
    "unencoded / in the password": (f"postgresql://alice:ab/{SECRET}@db/x", "@db/x"),
    "unencoded : in the password": (f"postgresql://alice:a:{SECRET}@db/x", "alice:***@db/x"),
    "query password": (f"sqlite:///r.db?password={SECRET}&mode=ro", "mode=ro"),
    "query sslpassword": (f"postgresql://db/x?sslmode=require&sslpassword={SECRET}", "sslmode=require"),
    "query token": (f"http://h/api?token={SECRET}", "http://h/api?token="),
    "wrong scheme with credentials": (f"htp://admin:{SECRET}@airflow:8080", "@airflow:8080"),
    "no scheme with credentials": (f"admin:{SECRET}@airflow:8080", "@airflow:8080"),
    "quoted in a message": (f"Airflow API URL 'ftp://admin:{SECRET}@h' is not an http(s) URL", "is not an http(s) URL"),
    "json body echoing the login": ('{"detail": "bad", "username": "admin", "password": "' + SECRET + '"}', '"username": "admin"'),
    "json body with escaped quote": ('{"password": "a\\"' + SECRET + '"}', '"password"'),
    "python repr": (f"{{'password': '{SECRET}', 'user': 'x'}}", "'user': 'x'"),
    "form body": (f"username=admin&password={SECRET}&x=1", "username=admin"),
    "bearer header": (f"Authorization: Bearer {SECRET}", "Authorization: Bearer"),
    "basic header": (f"Authorization: Basic {SECRET}", "Basic"),
    "access_token in json": ('{"access_token": "' + SECRET + '", "token_type": "bearer"}', "token_type"),
    "env style": (f"HANDOFF_AIRFLOW_API_PASSWORD={SECRET}", "HANDOFF_AIRFLOW_API_PASSWORD="),
    "libpq keyword string": (f"host=db user=alice password={SECRET} dbname=x", "dbname=x"),
    "api key": (f"api_key: {SECRET}", "api_key"),
    "slack webhook": (f"POST https://hooks.slack.com/services/T01ABC/B02DEF/{SECRET} failed", "hooks.slack.com/services/"),
    "slack-shaped webhook elsewhere": (f"url http://127.0.0.1:8123/services/T0TEST/B0TEST/{SECRET}: refused",
                                       "http://127.0.0.1:8123/services/"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_is_hidden(shape: str) -> None:
    text, kept = SHAPES[shape]
    shown = redact(text)
    assert SECRET not in shown, shown
    assert MASK in shown and kept in shown, shown
    assert redact(shown) == shown  # idempotent


def test_jwt_and_literal_secrets() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"
    assert jwt not in redact(f"token was {jwt} and expired")
    assert SECRET not in redact(f"<p>Login {SECRET} refused</p>", secrets=[SECRET, None])


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:8080/api/v2/dags/finance__daily/dagRuns",
    "finance.finance__daily.mrt_revenue: HO305 error: 05:00 is earlier than 07:00",
    "run at 2026-11-24T05:00:00+00:00 waits on marketplace.mrt_orders",
    "POST http://h:1/auth/token answered 401: Invalid credentials",
    "sqlite:////tmp/registry.db",
    # a secret-looking word before a colon in prose or a path is no key with a value (module docstring)
    "/etc/passwd: not valid JSON (Expecting value at line 1, column 1)",
    "handoff: error: token: file not found — write it with `handoff compile`",
    "token: not found",
    "secret: is a folder, not a plan",
    "/srv/keys/api_key: cannot read the file: permission denied",
    "C:\\conf\\password: not valid JSON",
    "~/.pgpass_password: not found",
    "models/passwd.sql: HO101 error: secret: not a model",
    "password: was refused for user alice",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(("text", "shown"), [
    ("api_key: Zq9-x", "api_key: ***"),
    ("password: letmein", "password: ***"),  # a letters-only value that ends the line is a field
    ("password: letmein\nnext line", "password: ***\nnext line"),
    ("sslpassword: abc, user: x", "sslpassword: ***, user: x"),
    ("token: abc)", "token: ***)"),
    ("passwd:abc", "passwd:***"),
    ("HANDOFF_AIRFLOW_API_PASSWORD: abc1 was set", "HANDOFF_AIRFLOW_API_PASSWORD: *** was set"),
    ("client_secret: 'a b c'", "client_secret: '***'"),
    ("secret: s3cr/t was refused", "secret: *** was refused"),  # not letters only: a secret anywhere
    ("password=letmein was refused", "password=*** was refused"),  # '=' always masks
    ("'token': 'not found'", "'token': '***'"),  # a quoted key always masks
])
def test_colon_pairs_mask_fields_not_prose(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown


def test_never_raises() -> None:
    class Broken:
        def __str__(self) -> str:
            raise ValueError("no")

    assert redact(Broken()) == "<Broken>"


def test_handoff_error_lines_and_registry_urls_are_redacted() -> None:
    error = HandoffError(f"cannot open postgresql://u:{SECRET}@h/db", where=f"sqlite:///x?password={SECRET}")
    assert SECRET not in error.one_line() and SECRET not in str(error)
    assert SECRET not in mask(f"postgresql://u:{SECRET}@h/db?sslpassword={SECRET}")
    assert SECRET not in mask(f"postgresql://u:{SECRET}@tail@h:notaport/db")


def test_logger_redacts_messages_args_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = get_logger("handoff.test_redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info("GET %s -> %s", f"http://admin:{SECRET}@h/api", 401)
        try:
            raise RuntimeError(f"password={SECRET}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert SECRET not in stream.getvalue() and "http://admin:***@h/api -> 401" in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()


def test_cli_last_resort_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys) -> None:
    from handoff.commands import core

    def explode(args: object) -> int:
        raise ValueError(f"internal state with postgresql://u:{SECRET}@h/db")

    monkeypatch.setattr(core, "cmd_inspect", explode)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main(["inspect", "x.plan.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("handoff: error: unexpected ValueError") and "--debug" in err and SECRET not in err
    for argv in (["--debug", "inspect", "x.plan.json"], ["inspect", "--debug", "x.plan.json"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and SECRET not in err and err.splitlines()[-1].startswith("handoff: error:")


def test_cli_oserror_and_recursion_are_one_line(monkeypatch, capsys) -> None:
    from handoff.commands import core

    def denied(args: object) -> int:
        raise PermissionError(13, "Permission denied", "/some/file")

    def deep(args: object) -> int:
        raise RecursionError("maximum recursion depth exceeded")

    for func, expected in ((denied, "/some/file: Permission denied"), (deep, "nested too deeply")):
        monkeypatch.setattr(core, "cmd_inspect", func)
        assert cli.main(["inspect", "x"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err


@pytest.mark.parametrize("password", ["p@ss/word", "pa/ss@w", "p@ss/wo:rd", "a@b?c", "x@y@z/q"])
def test_registry_urls_show_the_raw_texts_redaction_and_split_passwords_are_refused(password: str) -> None:
    """A parser may split an unencoded '@' + '/' differently from redaction (which reads the password
    up to the last '@'): messages are built from the raw text, and such a URL never reaches a driver."""
    from handoff.registry.engine import open_engine

    url = f"postgresql://alice:{password}@127.0.0.1:1/reg"
    assert mask(url) == "postgresql://alice:***@127.0.0.1:1/reg"
    with pytest.raises(HandoffError) as raised:
        open_engine(url, must_exist=True)
    line = raised.value.one_line()  # the whole line is fixed text around the masked URL: no piece can leak
    assert line.startswith("registry URL postgresql://alice:***@127.0.0.1:1/reg: the password holds characters "
                           "that split the URL (an unencoded '@' next to '/', ':', '?' or another '@') — "
                           "percent-encode the password"), line


def test_url_userinfo_scanner_means_exactly_what_its_regex_says():
    """redact masks `scheme://user:password@` with a linear scanner (`_mask_url_userinfo`); the
    regex `_URL_USERINFO` is its specification. 30,000 random strings over the characters that
    decide a match: the same output, character for character."""
    import random

    from handoff import redact as module

    def by_regex(text: str) -> str:
        return module._URL_USERINFO.sub(lambda m: f"{m.group('head')}{module.MASK}@", text)

    pieces = ["a", "b", ":", "//", "/", "@", " ", "\t", "\n", '"', "'", "<", ">", ".", "ab://", "x:", "p@", "h.io"]
    rng = random.Random(20261130)
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert module._mask_url_userinfo(text) == by_regex(text), repr(text)


@pytest.mark.parametrize("word", ["ab://", "ab://x:", "ab://x: ", "a://u:p@h "])
def test_hostile_repetitions_of_a_url_head_are_masked_in_one_pass(word):
    """100–200 kB of one URL head repeated (the regex alone took ~2 min on 'ab://' * 20000): every
    credential is masked, nothing else changes (bench: 0.2–0.5 s for the whole redact)."""
    text = word * 20_000
    out = redact(text)
    assert "p@" not in out
    if "@" not in word:
        assert out == text
    else:
        assert out == "a://u:***@h " * 20_000
