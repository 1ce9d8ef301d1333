"""The one redaction function: every message and log line that can hold a URL, a setting or a
response body goes through ``redact`` before anyone sees it.

What is hidden (each shape has a test in tests/test_redact.py):

* the password of a URL's user info, ``scheme://user:PASSWORD@host`` -> ``scheme://user:***@host``,
  including passwords with an unencoded ``@``, ``:`` or ``/`` (everything up to the last ``@``
  of the token is hidden), and the same without a scheme (``user:PASSWORD@host:5432``);
* secret-looking keys with their values, in query strings, ``key=value`` text, JSON and
  Python reprs: ``?password=...``, ``"password": "..."``, ``'token': '...'``, ``api_key=...``,
  ``sslpassword``, ``client_secret``, ``access_token``, ``refresh_token``, ``passwd``, ``pwd``.
  The rule, by separator:

  - ``KEY=value`` and quoted keys (``"KEY": …``, ``'KEY': …``): the value is always hidden;
  - ``KEY: value`` (unquoted key, colon — YAML, headers, and also ordinary prose): hidden when
    KEY is a key, not part of a path or name (not preceded by a letter, digit, ``_``, ``-``,
    ``/``, a backslash, ``.`` or ``~``: ``/etc/passwd: …`` is a file name), **and** the value is a
    field, not prose: a quoted string, a token holding anything but letters (``hunter2``,
    ``s3cr/t``, ``a_b``), or a token of letters that ends its line or is followed by
    ``, ; ) } ]``. So ``api_key: Zq9-x``, ``password: letmein`` (at the end) and
    ``token: abc, user: x`` are hidden, while ``token: not found`` and
    ``/etc/passwd: not valid JSON`` are left alone. What this leaves visible is a letters-only
    password followed by more words (``password: letmein was refused``); configured passwords
    are also passed as literal ``secrets``, hidden in any shape;
* ``Authorization``/``Bearer``/``Basic`` credentials and JSON Web Tokens (``eyJ...``);
* Slack incoming-webhook URLs (``https://hooks.slack.com/services/***``: the path is the secret);
* any literal given in ``secrets`` (e.g. the configured password, which a server may echo in a
  401 body in any shape).

Over-hiding is accepted (a path segment holding ``@`` after a ``:`` may be masked); under-hiding
is a bug. ``redact`` never raises and is idempotent. Loggers from ``get_logger`` apply it to every
record they emit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"

# names of keys whose values are secret (not secrets themselves)
_SECRET_KEYS = "|".join((
    r"(?:ssl)?pass(?:word|wd|phrase)?", "pwd", "secret", r"client[_-]?secret", r"api[_-]?key", "apikey",
    r"(?:access|refresh|id|auth)?[_-]?token", r"private[_-]?key", "credentials?"))

# scheme://user:password@host — the password runs to the LAST '@' of the token (unencoded '@' in it)
# (a password holding blanks: up to the first '@' on the line)
# (the scheme starts a word: tried once per word, not at every letter — linear on a 100 kB word)
_URL_USERINFO = re.compile(r"(?P<head>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/'\"<>]*:)"
                           r"(?P<secret>[^\s'\"<>]*(?=@)|[^\n'\"<>]*?(?=@))@")
# _URL_USERINFO's meaning, applied in linear time by _mask_url_userinfo (the regex itself rescans
# the rest of a token from every `scheme://x:` in it: 2 min on 'ab://' * 20000); the regex stays
# as the specification the tests compare the scanner with
_URL_HEAD = re.compile(_URL_USERINFO.pattern.split("(?P<secret>")[0])
_TOKEN_STOP = re.compile(r"[\s'\"<>]")
_LINE_STOP = re.compile(r"[\n'\"<>]")
# user:password@host without a scheme (a URL missing its scheme, a libpq-style string)
_BARE_USERINFO = re.compile(r"(?P<head>(?:^|(?<=[\s'\"(<=,]))[A-Za-z0-9._%+\-]+:)(?!//)(?P<secret>[^\s'\"<>@]+)"
                            r"@(?=[A-Za-z0-9\[])")
# "password": "x" / 'password': 'x' (JSON, Python reprs); the value may hold escaped quotes
_QUOTED_PAIR = re.compile(r"(?P<head>(?P<q>[\"'])(?:[A-Za-z0-9_\-]*[_\-])?(?:" + _SECRET_KEYS + r")(?P=q)\s*[:=]\s*)"
                          r"(?P<secret>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,}\]]+)", re.IGNORECASE)
# password=x, ?token=x&...: always a secret
_PLAIN_PAIR = re.compile(r"(?P<head>(?<![A-Za-z0-9])(?:[A-Za-z0-9]*[_\-])?(?:" + _SECRET_KEYS + r")\s*=\s*)"
                         r"(?!\*\*\*)(?P<secret>\"[^\"]*\"|'[^']*'|[^\s&;,'\"<>)}\]]+)", re.IGNORECASE)
# sslpassword: x — a key (not a path's tail) with a field value, not prose (module docstring)
_VALUE_END = r"[^\s&;,'\"<>)}\]]"
_COLON_PAIR = re.compile(r"(?P<head>(?<![A-Za-z0-9_\-/\\.~])(?:[A-Za-z0-9]+[_\-])*(?:" + _SECRET_KEYS
                         + r")[ \t]*:[ \t]*)(?!\*\*\*)(?P<secret>\"[^\"]*\"|'[^']*'"
                         r"|" + _VALUE_END + r"*[^A-Za-z\s&;,'\"<>)}\]]" + _VALUE_END + r"*"
                         r"|[A-Za-z]+(?=[ \t]*(?:$|[,;)}\]])))", re.IGNORECASE | re.MULTILINE)
_AUTH_HEADER = re.compile(r"(?P<head>\b(?:(?:Bearer|Basic)\s+|(?i:authorization)\s*[:=]\s*(?:[A-Za-z]+\s+)?))"
                          r"(?P<secret>[A-Za-z0-9._~+/=\-]{6,})(?![A-Za-z0-9._~+/=\-]|\s+\*\*\*)")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")
# Slack incoming-webhook URLs: the path after /services/ (or /workflows/, /triggers/) is the secret,
# on hooks.slack.com and on any host serving the same path shape (T.../B.../token)
_SLACK_WEBHOOK = re.compile(r"(?P<head>hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/|"
                            r"/services/(?=T[A-Z0-9]{2,}/B[A-Z0-9]{2,}/))(?P<secret>[^\s'\"<>)]+)")


def _next(pattern: re.Pattern[str], text: str, pos: int, cached: int) -> int:
    """Where ``pattern`` next matches at or after ``pos`` (``len(text)`` when nowhere), reusing
    ``cached`` — the answer for an earlier position — while it still lies at or after ``pos``."""
    if cached >= pos:
        return cached
    found = pattern.search(text, pos)
    return found.start() if found else len(text)


def _mask_url_userinfo(text: str) -> str:
    """``_URL_USERINFO.sub(head + '***@')``, in time linear in ``len(text)``: the password after
    ``scheme://user:`` runs to the last '@' of its token, else to the first '@' on its line before a
    quote or '<'/'>'. Every scan is cached across heads (heads only move forward)."""
    parts: list[str] = []
    last = pos = 0
    token_end = line_end = next_at = -1
    run_at, run_end = -1, -1  # the last '@' of the token that ends at run_end (searched once per token)
    while (head := _URL_HEAD.search(text, pos)) is not None:
        start, end = head.span()
        token_end = _next(_TOKEN_STOP, text, end, token_end)
        if run_end != token_end:
            run_end, run_at = token_end, text.rfind("@", end, token_end)
        secret_end = run_at if run_at >= end else -1
        if secret_end < 0:
            if next_at < end and next_at != len(text):
                found = text.find("@", end)
                next_at = found if found >= 0 else len(text)
            line_end = _next(_LINE_STOP, text, end, line_end)
            secret_end = next_at if next_at < min(line_end, len(text)) else -1
        if secret_end < 0:
            pos = start + 1
            continue
        parts += [text[last:start], head.group(0), MASK, "@"]
        last = pos = secret_end + 1
    parts.append(text[last:])
    return "".join(parts)


def _masked(match: re.Match[str]) -> str:
    secret = match.group("secret")
    quote = secret[0] if secret[:1] in ("'", '"') and len(secret) > 1 and secret[-1] == secret[0] else ""
    return f"{match.group('head')}{quote}{MASK}{quote}"


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` (anything; ``str()`` of it) with every credential shape above replaced by ``***``."""
    try:
        out = text if isinstance(text, str) else str(text)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the real error
        out = f"<{type(text).__name__}>"
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        out = out.replace(secret, MASK)
    out = _mask_url_userinfo(out)
    out = _BARE_USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", out)
    out = _QUOTED_PAIR.sub(_masked, out)
    out = _PLAIN_PAIR.sub(_masked, out)
    out = _COLON_PAIR.sub(_masked, out)
    out = _AUTH_HEADER.sub(lambda m: f"{m.group('head')}{MASK}", out)
    out = _SLACK_WEBHOOK.sub(lambda m: f"{m.group('head')}{MASK}", out)
    return _JWT.sub(MASK, out)


class RedactingFilter(logging.Filter):
    """A logging filter that renders a record's message and redacts it (args are dropped)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - keep the record, as logging itself would
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` whose records are redacted (use it in every handoff module that logs)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
