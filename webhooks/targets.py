"""Where webhooks may go: refuse private, loopback and link-local targets (SSRF).

A webhook URL is checked when the subscription is saved (scheme, and the host if it is an
address or `localhost`) and again at every delivery, after DNS resolution: the POST then
connects to the very address that was checked, so a name that resolves elsewhere between check
and use (DNS rebinding) gains nothing. `LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS` lifts the
address check (development, and the tests' local receiver).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

SCHEMES = {"http": 80, "https": 443}


class TargetRefused(ValueError):
    """The URL may not receive webhooks; `code` is stable for API clients."""

    code = "webhook_target_refused"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str
    """The checked IP address the delivery connects to."""


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _private_allowed() -> bool:
    return settings.LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise TargetRefused("webhook URLs must be http or https")
    try:
        host, port = parts.hostname, parts.port or SCHEMES[scheme]
    except ValueError:
        raise TargetRefused("the URL's port is not valid") from None
    if not host:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in webhook URLs are not supported; use the secret")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port, path


def url_check(url: str) -> None:
    """Refuse what is certainly not allowed, without resolving names (on save)."""
    _, host, _, _ = _split(url)
    if _private_allowed():
        return
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise TargetRefused("loopback targets are not allowed")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked after resolution at delivery time
    if not address_allowed(host):
        raise TargetRefused(f"{host} is a private, loopback or link-local address")


def target_resolve(url: str) -> Target:
    """The URL's target with the address to connect to; refused if any address the name
    resolves to is not allowed."""
    scheme, host, port, path = _split(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not _private_allowed():
        refused = [address for address in addresses if not address_allowed(address)]
        if refused:
            raise TargetRefused(
                f"{host} resolves to a private, loopback or link-local address ({refused[0]})"
            )
    return Target(scheme, host, port, path, addresses[0])
