"""Where a person's webhook or Slack contact may point. Any console or command-line user can
type its URL, and the central service POSTs to it: so it must not reach this machine, its
private networks or a cloud's metadata service (server-side request forgery) unless the
admin allows that network (``[notify] allow_internal_webhooks``).

Internal is every address that is not globally routable (``ipaddress``' ``is_global``:
loopback, link-local such as 169.254.169.254, private, shared, reserved, documentation),
multicast and the unspecified address; an IPv4 address mapped into IPv6 counts as itself.

- When a contact is added (``problem``, no name resolution): a literal address in any form
  the resolver would take ("127.0.0.1", "[::1]", "127.1", "2130706433", "0x7f.1"), and the
  names of this machine ("localhost", "*.localhost", "ip6-localhost", "ip6-loopback").
- At each send: the same check of the URL, and a person's webhook goes out through an HTTP
  session whose resolver drops internal addresses (``GuardedResolver``), so a name that
  resolves to one, or is made to later (DNS rebinding), reaches nothing internal: the
  connection is made to the addresses checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOCAL_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
REFUSED = ("an internal address (loopback, link-local or private) that people's contacts "
           "may not reach; [notify] allow_internal_webhooks can allow its network")


def literal(host: str) -> Address | None:
    """``host`` as an address if it is written as one (in any form inet_aton takes)."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except (OSError, ValueError):
        return None


def internal(address: Address, allowed: Sequence[Network]) -> bool:
    """Whether ``address`` is internal and no allowed network holds it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped          # "::ffff:127.0.0.1" is 127.0.0.1
    inside = not address.is_global or address.is_multicast or address.is_unspecified
    return inside and not any(address in n for n in allowed if n.version == address.version)


def problem(url: str, allowed: Sequence[Network]) -> str:
    """Why a person's ``url`` may not be sent to, or "" (never echoes the URL)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return "expected a URL with a host name"
    name = host.rstrip(".").lower()
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return f"its host is this machine's name, {REFUSED}"
    address = literal(host)
    if address is not None and internal(address, allowed):
        return f"its host is {REFUSED}"
    return ""


class Refused(OSError):
    """A name that resolves only to addresses people's contacts may not reach."""


class GuardedResolver(AbstractResolver):
    """The system's resolver, keeping only the addresses people's contacts may reach."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = tuple(allowed)
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        kept = [r for r in found if not _internal_result(r, self.allowed)]
        if not kept:
            raise Refused(f"the host resolves only to {REFUSED}")
        return kept

    async def close(self) -> None:
        await self._resolver.close()


def _internal_result(result: ResolveResult, allowed: Sequence[Network]) -> bool:
    address = literal(str(result["host"]))
    return address is None or internal(address, allowed)
