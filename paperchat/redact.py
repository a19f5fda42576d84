"""Secrets out of every message: URL passwords, API keys and tokens become `***`.

paperchat formats errors that name servers (`PAPERCHAT_LLM_BASE_URL`, `PAPERCHAT_CHROMA_URL`)
and quotes what those servers said; either may carry a password or a key. `redact` is the one
function every such place calls: LLM fault messages (`rag.models.faults`), the server names in
them (`rag.models.llm`), the page's error display, the HTTP API's error bodies, and, through
`RedactingFilter`, every log record `paperchat ui` writes. It removes what looks like a
secret (the password part of a URL, `Bearer ...`, `sk-...` keys, `?api_key=` parameters) and
every value it is told is secret (`secret_values(settings)`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from paperchat.settings import Settings

MASK = "***"
_MIN_SECRET = 4
"""Known secret values shorter than this are not searched for (they would mask ordinary text)."""

_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")
_QUERY_SECRET = re.compile(
    r"(?i)(?P<name>[?&](?:api[_-]?key|key|token|access[_-]?token|password|secret|sig)=)[^&\s#]+"
)
_BEARER = re.compile(r"(?i)\b(?P<name>bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_KEY_LIKE = re.compile(r"\b(?:sk|hf|ghp|gho|xox[bp])[-_][A-Za-z0-9_-]{8,}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with URL passwords, bearer tokens, API keys and `secrets` replaced by `***`.

    Args:
        text: Any message: an error, a log line, a URL.
        secrets: Values known to be secret (see `secret_values`); each is masked wherever it
            appears, also inside URLs.
    """
    for value in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _QUERY_SECRET.sub(lambda m: m.group("name") + MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group('name')} {MASK}", text)
    return _KEY_LIKE.sub(MASK, text)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _ = match.group("userinfo").partition(":")
    shown = f"{user}:{MASK}" if sep else MASK  # a lone user part may itself be a token
    return f"{match.group('scheme')}{shown}@"


def display_url(url: str) -> str:
    """Return `url` without its user name and password, for messages (`http://host:port/v1`)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return redact(url)
    return redact(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl())


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold: tokens, keys, the page password, URL passwords."""
    values: list[str] = []
    for secret in (settings.api_token, settings.openai_api_key, settings.embed_api_key):
        if secret is not None:
            values.append(secret.get_secret_value())
    if settings.ui_auth:
        values.append(settings.ui_auth.partition(":")[2])
    for url in (settings.llm_base_url, settings.embed_base_url, settings.chroma_url):
        if url:
            password = urlsplit(url).password
            if password:
                values.append(password)
    return [v for v in values if v]


def public_message(err: BaseException, secrets: Iterable[str] = ()) -> str:
    """Return what a web or API client may see of `err`: no server detail, no secret.

    A `PaperchatError` gives its `public` text (without what an upstream server said);
    anything else gives its message. Either is passed through `redact`.
    """
    text = getattr(err, "public", None)
    return redact(text if isinstance(text, str) else str(err), secrets)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message and traceback before it is written.

    Args:
        secrets: Known secret values (see `secret_values`).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        message = redact(record.getMessage(), self.secrets)
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self.secrets)
            record.exc_info = None
        record.msg, record.args = message, None
        return True


def install_log_redaction(secrets: Iterable[str]) -> RedactingFilter:
    """Attach one `RedactingFilter` to every handler of the root and uvicorn loggers."""
    redacting = RedactingFilter(secrets)
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            if redacting not in handler.filters:
                handler.addFilter(redacting)
    return redacting
