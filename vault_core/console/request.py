"""The request as the audit log records it: client IP, forwarded chain, User-Agent.

Every header the console uses is read here, by ``request_info``; tests call
it with explicit arguments (AppTest cannot send headers, Playwright can).
``X-Forwarded-For`` is believed only when the direct peer is a trusted proxy
(``VAULT_TRUSTED_PROXIES``: comma-separated IPs or CIDRs); otherwise it is
kept as *claimed* next to the real peer address.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..names import printable

MAX_USER_AGENT = 512
MAX_FORWARDED = 512
LOCAL = "127.0.0.1"  # Streamlit reports loopback peers as None


@dataclass(frozen=True)
class RequestInfo:
    ip_address: str
    user_agent: str | None
    forwarded_for: str | None
    forwarded_trusted: bool


def _bounded(raw: str, limit: int) -> str:
    """Escaped, then cut: the stored text never exceeds ``limit`` characters."""
    return printable(raw, limit)[:limit]


def trusted_proxies(raw: str | None = None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse ``VAULT_TRUSTED_PROXIES`` (bad entries are ignored: they never widen trust)."""
    text = os.environ.get("VAULT_TRUSTED_PROXIES", "") if raw is None else raw
    nets = []
    for part in text.split(","):
        part = part.strip()
        if part:
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                continue
    return nets


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _is_trusted(ip: str, nets: list) -> bool:
    addr = _parse_ip(ip)
    return addr is not None and any(addr in net for net in nets)


def peer_is_trusted(ip: str | None, proxies: str | None = None) -> bool:
    """True if ``ip`` (the direct peer) is one of ``VAULT_TRUSTED_PROXIES``."""
    return bool(ip) and _is_trusted(ip, trusted_proxies(proxies))


def request_info(ip_address: str | None = None, headers: Mapping[str, Any] | None = None, *,
                 proxies: str | None = None, from_streamlit: bool | None = None) -> RequestInfo:
    """Who is asking: from the arguments, or (when none are given) from ``st.context``."""
    if from_streamlit is None:
        from_streamlit = ip_address is None and headers is None
    if from_streamlit:
        import streamlit as st

        ip = st.context.ip_address
        ip_address = ip if isinstance(ip, str) else None  # None for loopback (and outside a browser)
        try:
            headers = {str(k): str(v) for k, v in st.context.headers.items()}
        except Exception:  # no request behind this run (AppTest, bare mode)
            headers = {}
    headers = {str(k).lower(): v for k, v in (headers or {}).items()}
    peer = _bounded(ip_address or LOCAL, 64)
    ua = headers.get("user-agent")
    ua = _bounded(str(ua), MAX_USER_AGENT) if ua else None
    xff = headers.get("x-forwarded-for")
    if not xff:
        return RequestInfo(peer, ua, None, False)
    xff_text = _bounded(str(xff), MAX_FORWARDED)
    nets = trusted_proxies(proxies)
    if not _is_trusted(peer, nets):
        return RequestInfo(peer, ua, xff_text, False)  # claimed, not believed
    # walk from the right: the first hop that is not one of our proxies is the client
    hops = [h.strip() for h in str(xff).split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        if _parse_ip(hop) is None:
            break
        client = hop
        if not _is_trusted(hop, nets):
            break
    return RequestInfo(_bounded(client, 64), ua, xff_text, True)
