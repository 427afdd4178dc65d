"""Where webhooks may go (SSRF defence), and the one POST that sends them.

In AWS mode (or with `PROMPTLAB_WEBHOOK_BLOCK_PRIVATE=true`) a callback URL must resolve only to public
addresses: no loopback, private, link-local (the instance metadata service at 169.254.169.254), CGNAT,
multicast or reserved ones, IPv4-mapped IPv6 included. `PROMPTLAB_WEBHOOK_ALLOWED_HOSTS` (comma-separated,
`*.example.com` for subdomains) limits callbacks to those hosts and trusts them even on private
addresses. The check runs at submit and again at delivery, and the delivery connects to the address that
was checked (no second DNS answer can swap it), and never follows redirects.
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


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def vet(url: str) -> Target:
    """The target of a webhook URL, or `TargetRefused`."""
    settings = get_settings()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TargetRefused("only http and https URLs with a host can receive webhooks")
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
    block = settings.webhook_block_private if settings.webhook_block_private is not None else settings.mode == "aws"
    if block and not allowed:
        private = [a for a in addresses if not _public(a)]
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
