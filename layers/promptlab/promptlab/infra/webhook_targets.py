"""Where webhooks may go (SSRF defence), and the one POST that sends them.

In every mode a callback URL must resolve only to public addresses: no loopback, private, link-local (the
instance metadata service at 169.254.169.254), CGNAT, multicast or reserved ones — also when written as
IPv6 that carries an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`,
IPv4-compatible `::a.b.c.d`, NAT64
`64:ff9b::/96`, 6to4 `2002::/16`, Teredo; the local-use NAT64 `64:ff9b:1::/48` is refused whole). Outside
local mode only https is allowed. `PROMPTLAB_WEBHOOK_ALLOWED_HOSTS` (comma-separated, `*.example.com` for
subdomains) limits callbacks to those hosts, which are checked for private addresses all the same; locally,
`PROMPTLAB_WEBHOOK_ALLOW_LOOPBACK=true` lets a receiver on this machine take them. The check runs at submit
and again at delivery, the delivery connects to the address that was checked (no second DNS answer can
swap it), and it never follows redirects.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from promptlab.core.settings import get_settings


class TargetRefused(Exception):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the vetted IP the delivery connects to


def _allowed_host(host: str, allowed: list[str]) -> bool:
    return any(host == entry or (entry.startswith("*.") and host.endswith(entry[1:])) for entry in allowed)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT's `::ffff:0:a.b.c.d`


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4, Teredo client), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _IPV4_TRANSLATED or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def is_public(address: str) -> bool:
    """Whether a webhook may connect to this address: globally reachable, unicast, whatever its spelling."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None:
            return inner.is_global and not inner.is_multicast
    return ip.is_global and not ip.is_multicast


def _loopback(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback


def vet(url: str) -> Target:
    """The target of a webhook URL, or `TargetRefused`."""
    settings = get_settings()
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # `http://[`: a bracket that opens no IPv6 address
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TargetRefused("only http and https URLs with a host can receive webhooks")
    if parts.scheme != "https" and settings.mode != "local":
        raise TargetRefused("webhooks go to https URLs only")
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused("the URL's port is not valid") from exc
    allowed = [h.strip().lower() for h in settings.webhook_allowed_hosts.split(",") if h.strip()]
    if allowed and not _allowed_host(host, allowed):
        raise TargetRefused(f"{host} is not in the webhook allow-list")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"{host} does not resolve") from exc
    addresses = [str(info[4][0]) for info in infos]
    if settings.webhook_block_private:
        loopback_ok = settings.webhook_allow_loopback and settings.mode == "local"
        private = [a for a in addresses if not is_public(a) and not (loopback_ok and _loopback(a))]
        if private:
            raise TargetRefused(f"{host} resolves to a non-public address ({private[0]}): webhooks cannot go there")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0])


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST to a vetted webhook URL; the status code (redirects are answers, not followed).

    The HTTP client is imported here: the API function only vets URLs and never pays for it.
    """
    import http.client
    import ssl

    class _PinnedHTTPSConnection(http.client.HTTPSConnection):
        """HTTPS to a vetted address, with the certificate checked against the URL's host name."""

        def __init__(self, target: Target, timeout: float) -> None:
            super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
            self._address = target.address

        def connect(self) -> None:
            sock = socket.create_connection((self._address, self.port), self.timeout)
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]

    class _PinnedHTTPConnection(http.client.HTTPConnection):
        def __init__(self, target: Target, timeout: float) -> None:
            super().__init__(target.host, target.port, timeout=timeout)
            self._address = target.address

        def connect(self) -> None:
            self.sock = socket.create_connection((self._address, self.port), self.timeout)

    target = vet(url)
    conn: http.client.HTTPConnection = (
        _PinnedHTTPSConnection(target, timeout) if target.scheme == "https" else _PinnedHTTPConnection(target, timeout)
    )
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()
