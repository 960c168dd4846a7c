"""Which web pages may open a connection: the Origin check on $connect.

Browsers send `Origin` with every WebSocket handshake, and a page cannot forge it, so
checking it stops other sites from opening connections in a visitor's name (cross-site
WebSocket hijacking). Clients that are not browsers may send no Origin at all; whether
they are let in is a setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from chat.settings import LOOPBACK_ORIGINS

# 127.0.0.1, localhost and [::1]: the hosts of settings.json's loopback origins.
LOOPBACK_HOSTS = frozenset(urlsplit(origin).netloc for origin in LOOPBACK_ORIGINS)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header, matched case-insensitively (API Gateway keeps the client's case)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


def _loopback(origin: str) -> str | None:
    """`scheme://host` for an http(s) origin on a loopback host (any port), else None."""
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or host is None:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" if shown in LOOPBACK_HOSTS else None


def origin_allowed(origin: str | None, allowed: tuple[str, ...], *, allow_missing: bool) -> bool:
    """Whether a handshake with this Origin header may connect.

    `allowed` holds exact origins (`https://chat.example.com`); a loopback origin in it
    (`http://127.0.0.1`) admits that host on any port, for the local sandbox; `*` admits
    every origin. The literal origin `null` (sandboxed frames, file pages) is refused
    unless `*` is allowed.
    """
    if origin is None or not origin.strip():
        return allow_missing
    if "*" in allowed:
        return True
    origin = origin.strip().rstrip("/")
    if origin.lower() in (a.lower() for a in allowed):
        return True
    loopback = _loopback(origin)
    return loopback is not None and loopback in allowed
