"""Text read from the host (log lines, command lines, unit descriptions, HTTP bodies, exception messages) as data.

:func:`mask_secrets` hides credentials in such text (``--password=…``, mysql's ``-p…``, ``token=…`` pairs,
``Authorization: …``, bearer tokens, passwords in URLs); command lines are masked wherever they are read.
:func:`fence` is what the model reads: the text masked, stripped of control and bidi characters, cut to a bound and
delimited as ``⟦…⟧``. The delimiters inside the text become ``[`` and ``]``, so the text cannot close its fence and
put words outside it. The MCP server's instructions say that fenced text is data from the host, never instructions.
"""

from __future__ import annotations

import re

from crucible_monitor.configtypes import REDACTED, mask_url

__all__ = ["CLOSE", "COMMAND_CHARS", "LINE_CHARS", "OPEN", "fence", "fenced", "mask_secrets", "trim"]

OPEN, CLOSE = "⟦", "⟧"
LINE_CHARS = 500
"""A log line, message or body the model reads is cut to this many characters."""
COMMAND_CHARS = 200
"""A command line the model reads is cut to this many characters."""

_SECRET_WORD = r"(?:pass(?:word|wd|phrase)?|pwd|token|secret|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)"
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)(?:(bearer|basic|digest|token)\s+)?[^\s,;\"']+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+")
_FLAG_SPACE = re.compile(rf"(?i)(?<![\w-])(--?[\w-]*{_SECRET_WORD}[\w-]*\s+)(?!-)(\S+)")
_PAIR = re.compile(
    rf"(?i)(?<![\w-])([\w.-]*{_SECRET_WORD}[\w.-]*[\"']?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;\"']+)",
)
_MYSQL = re.compile(r"(?i)(?:^|[\s/])(?:mysql\w*|mariadb\w*)(?:\s|$)")
_MYSQL_P = re.compile(r"(?<![\w-])(-p)(?=\S)(\S+)")
_REDIS = re.compile(r"(?<![\w-])redis-cli\b")
_REDIS_A = re.compile(r"(?<![\w-])(-a\s+)(\S+)")
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _url(match: re.Match[str]) -> str:
    try:
        return mask_url(match.group())
    except ValueError:  # not a URL urlsplit accepts (a stray bracket): nothing to mask in it
        return match.group()


def mask_secrets(text: str) -> str:
    """``text`` with every credential it shows replaced by :data:`REDACTED`."""
    text = _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2] + ' ' if m[2] else ''}{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _URL.sub(_url, text)
    text = _FLAG_SPACE.sub(rf"\g<1>{REDACTED}", text)
    text = _PAIR.sub(lambda m: m[1] + REDACTED if m[2] != REDACTED else m[0], text)
    if _MYSQL.search(text):
        text = _MYSQL_P.sub(rf"\g<1>{REDACTED}", text)
    if _REDIS.search(text):
        text = _REDIS_A.sub(rf"\g<1>{REDACTED}", text)
    return text


def trim(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" where cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fence(text: str, limit: int = LINE_CHARS) -> str:
    """``text`` as the model reads host text: masked, without control or bidi characters, cut to ``limit``
    characters and delimited by :data:`OPEN` and :data:`CLOSE` (which cannot occur inside)."""
    cleaned = _INVISIBLE.sub("", mask_secrets(text)).replace(OPEN, "[").replace(CLOSE, "]")
    return f"{OPEN}{trim(cleaned, limit)}{CLOSE}"


def fenced(text: str | None, limit: int = LINE_CHARS) -> str | None:
    """:func:`fence` of ``text``, None as None."""
    return None if text is None else fence(text, limit)
