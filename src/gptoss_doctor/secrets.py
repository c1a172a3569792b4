"""Secrets this process holds (an endpoint's API key, ``HF_TOKEN``), and the one scrubber
every string leaving the process goes through: terminal output, error lines, results files
and HTML pages.

A secret is removed in every form a server or a JSON encoder may echo it in: raw,
JSON-escaped (``\\/``, ``\\uXXXX``), URL-encoded (``%2F``, ``+``) and base64 in a Basic
header. Registration is process-wide because the key is read once, where the user named it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_LENGTH = 4  # shorter strings would scrub ordinary words
TOKEN_ENVS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# Shapes of credentials whatever process holds them (``redact`` replaces them in what is
# shared; ``scrub`` removes only the registered ones, which it knows exactly). A pattern with
# a ``keep`` group keeps that part ("Bearer ") and replaces the rest.
TOKEN_PATTERNS = tuple(re.compile(pattern, flags) for pattern, flags in (
    (r"\bhf_[A-Za-z0-9]{20,}", 0),  # Hugging Face access tokens
    (r"\bsk-[A-Za-z0-9_-]{20,}", 0),  # OpenAI, Anthropic (sk-ant-), OpenRouter (sk-or-)
    (r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})", 0),  # GitHub
    (r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", 0),  # AWS access key ids
    (r"\bAIza[0-9A-Za-z_-]{35}", 0),  # Google API keys
    (r"\bxox[abposr]-[A-Za-z0-9-]{10,}", 0),  # Slack
    (r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0),  # JWTs
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
     re.DOTALL),
    # HTTP credentials: a digit in the token tells it from prose ("Basic understanding")
    (r"(?P<keep>\b(?:Bearer|Basic)\s+)(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{8,}",
     re.IGNORECASE),
))
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None


def _forms(secret: str) -> Iterable[str]:
    yield secret
    yield json.dumps(secret)[1:-1]  # as a JSON encoder writes it (\u escapes for non-ASCII)
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    yield secret.replace("/", "\\/")  # JSON's optional escaped solidus
    yield json.dumps(secret)[1:-1].replace("/", "\\/")
    yield urllib.parse.quote(secret, safe="")
    yield urllib.parse.quote_plus(secret, safe="")
    yield urllib.parse.quote(secret)
    yield base64.b64encode(secret.encode()).decode()


def register(secret: str | None) -> None:
    """Remember ``secret`` so that ``scrub`` removes it from now on."""
    global _pattern
    if not secret or len(secret) < MIN_LENGTH:
        return
    _known.update(form for form in _forms(secret) if len(form) >= MIN_LENGTH)
    ordered = sorted(_known, key=len, reverse=True)  # longest form first
    _pattern = re.compile("|".join(re.escape(form) for form in ordered), re.IGNORECASE)


def register_environment() -> None:
    """Register the Hub tokens found in the environment (read at start-up)."""
    for name in TOKEN_ENVS:
        register(os.environ.get(name))


def hub_token() -> str | None:
    """The user's Hugging Face token from ``HF_TOKEN`` (nowhere else), registered so that
    ``scrub`` removes it; None when unset."""
    token = os.environ.get("HF_TOKEN", "").strip() or None
    register(token)
    return token


def scrub(text: str) -> str:
    """``text`` with every registered secret, in any of its forms, replaced."""
    if _pattern is None or not text:
        return text
    return _pattern.sub(REDACTED, text)


def forget_all() -> None:
    """Drop every registered secret (tests)."""
    global _pattern
    _known.clear()
    _pattern = None
