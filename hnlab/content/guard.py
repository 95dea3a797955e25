"""Refusing internal addresses: a URL, or any redirect, whose host resolves to a loopback,
private, link-local, multicast, reserved or unspecified address is not fetched.

The check is made on the address actually connected to: ``GuardedResolver`` is the
resolver of the fetcher's aiohttp connector, so it filters what the connector will
connect to, and no second DNS lookup can answer differently (DNS rebinding). Hosts
given as IP literals, which aiohttp does not resolve, are checked by ``check_host``
before the request. ``HNLAB_CONTENT_ALLOW`` (hosts or CIDRs) lets named hosts and
networks through: tests and the simulator's web on loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RefusedAddress(Exception):
    """The host is, or resolves only to, an address hnlab does not fetch from."""


class Allow:
    """``HNLAB_CONTENT_ALLOW``: host names (exact, lower case) and networks let through."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.hosts: set[str] = set()
        self.networks: list[Network] = []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.rstrip("."))

    def host(self, name: str) -> bool:
        return name.lower().rstrip(".") in self.hosts

    def address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        return any(ip in net for net in self.networks if net.version == ip.version)


def refused_reason(address: str) -> str | None:
    """Why ``address`` is refused (``"private"``, ``"loopback"``, …), or None."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for name in ("loopback", "link_local", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    if ip.is_private or not ip.is_global:
        return "private"
    return None


def check_host(host: str, allow: Allow) -> None:
    """Refuse a host that is an IP literal of a refused kind (names are checked when
    resolved)."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return
    address = host.strip("[]")
    reason = refused_reason(address)
    if reason and not allow.host(host) and not allow.address(address):
        raise RefusedAddress(f"{address} is a {reason} address")


class GuardedResolver(AbstractResolver):
    """The default resolver, keeping only the addresses hnlab may connect to."""

    def __init__(self, allow: Allow, inner: AbstractResolver | None = None) -> None:
        self.allow = allow
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        if self.allow.host(host):
            return found
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for entry in found:
            reason = refused_reason(entry["host"])
            if reason is None or self.allow.address(entry["host"]):
                kept.append(entry)
            else:
                reasons.append(f"{entry['host']} ({reason})")
        if not kept:
            raise RefusedAddress(f"{host} resolves only to refused addresses: {', '.join(reasons)}")
        return kept

    async def close(self) -> None:
        await self.inner.close()


def describe(exc: BaseException) -> RefusedAddress | None:
    """The RefusedAddress inside an aiohttp error, or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RefusedAddress):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
