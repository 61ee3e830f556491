"""Requests from other web sites, refused before a route runs (gateway.http.guard calls these).

A browser lets any page it shows send a request to any address, this gateway's included:
a form posted to it, or (by DNS rebinding, a name of the page's that comes to resolve to
127.0.0.1) a script that reads the answers. With API keys on, such a request carries no
key and gets nothing. With auth off (`scribe serve`), the gateway itself has to tell:

- **Host** (auth off only): a rebinding page's requests name the page's own host; the
  gateway answers only to `allowed_hosts` (localhost by default, any port), to the
  address the connection came in on, and to what `public_url` names. Others: 421.
- **Origin** (auth on and off): a request that changes something (POST, PUT, PATCH,
  DELETE) whose `Origin` is not the gateway's own (the Host it was sent to, the host a
  proxy says it was sent to, `public_url`, or one of `allowed_origins`) is refused with a
  403; without an Origin, so is one that `Sec-Fetch-Site` calls cross-site or same-site.
  Browsers send either on every such request; API clients send neither and pass.

Nothing here is a defence against a client that is not a browser: it sets what headers
it likes, and meets the API key instead.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable, Mapping

from core.settings import Settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(value: str) -> tuple[str, int | None]:
    """A Host header's name (lower case, IPv6 without brackets, no trailing dot) and port."""
    value = value.strip().lower()
    port: int | None = None
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    else:
        name, sep, tail = value.rpartition(":")
        if sep and tail.isdigit() and ":" not in name:
            port = int(tail)
        else:
            name = value
    return name.rstrip("."), port


def _name(entry: str) -> str:
    return split_host(entry)[0] if not entry.startswith(".") else entry.lower().rstrip(".")


def host_allowed(host: str, patterns: Iterable[str], local_address: str | None) -> bool:
    """Whether a Host header names this gateway: one of `patterns` (any port; ".x.org" is
    x.org and its subdomains; "*" is any), or the address the connection came in on."""
    name, _ = split_host(host)
    for pattern in patterns:
        wanted = _name(pattern.strip())
        if wanted == "*" or wanted == name:
            return True
        if wanted.startswith(".") and (name == wanted[1:] or name.endswith(wanted)):
            return True
    if local_address:
        try:
            return ipaddress.ip_address(name) == ipaddress.ip_address(local_address)
        except ValueError:
            return False
    return False


def _origin_of(url: str) -> tuple[str, int] | None:
    parts = urllib.parse.urlsplit(url.strip().lower())
    if not parts.scheme or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname.rstrip("."), port or DEFAULT_PORTS.get(parts.scheme, -1)


def _is_host(origin: tuple[str, int], host: str, origin_scheme_port: int) -> bool:
    """Whether an origin is the site a Host header names. A Host without a port is the
    scheme's default port, the scheme being the origin's (a TLS proxy in front)."""
    name, port = split_host(host)
    return origin[0] == name and origin[1] == (port if port is not None else origin_scheme_port)


def cross_site_reason(method: str, headers: Mapping[str, str], settings: Settings) -> str | None:
    """Why a request that changes something comes from another site, or None."""
    if method not in WRITE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is None:
        fetch_site = headers.get("sec-fetch-site", "").strip().lower()
        if fetch_site in ("cross-site", "same-site"):
            return f"the browser says this request comes from another site ({fetch_site})"
        return None
    parsed = _origin_of(origin) if origin.strip().lower() != "null" else None
    if parsed is not None:
        scheme = urllib.parse.urlsplit(origin.strip().lower()).scheme
        default = DEFAULT_PORTS.get(scheme, -1)
        for host in (headers.get("host"), headers.get("x-forwarded-host")):
            if host and _is_host(parsed, host.split(",")[0], default):
                return None
        for allowed in (settings.public_url, *settings.allowed_origins):
            if allowed and _origin_of(allowed) == parsed:
                return None
    return (
        f"requests from {origin[:100]!r} may not change anything here: it is not this"
        " server's own page (allow another origin with SCRIBE_ALLOWED_ORIGINS)"
    )


def misdirected_reason(
    headers: Mapping[str, str], settings: Settings, local: str | None
) -> str | None:
    """Why a request's Host is not one this gateway answers to (auth off), or None."""
    host = headers.get("host")
    if host is None or settings.auth_enabled:
        return None
    patterns = list(settings.allowed_hosts)
    if settings.public_url:
        public = urllib.parse.urlsplit(settings.public_url).hostname
        if public:
            patterns.append(public)
    if host_allowed(host, patterns, local):
        return None
    return (
        f"this server does not answer to the host name {host[:100]!r}: it runs without API"
        " keys and answers only to "
        + ", ".join(settings.allowed_hosts)
        + " (add the name to SCRIBE_ALLOWED_HOSTS)"
    )
