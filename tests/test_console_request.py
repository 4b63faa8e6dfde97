"""Request headers as the audit records them (request_info is the one reader of headers)."""

from __future__ import annotations

from vault_core.console.request import request_info


def test_forwarded_for_from_an_untrusted_peer_is_only_claimed():
    info = request_info("203.0.113.9", {"X-Forwarded-For": "6.6.6.6", "User-Agent": "ua"}, proxies="")
    assert (info.ip_address, info.forwarded_for, info.forwarded_trusted) == ("203.0.113.9", "6.6.6.6", False)


def test_trusted_proxy_gives_the_first_untrusted_hop_from_the_right():
    headers = {"x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.0.0.2"}
    info = request_info("10.0.0.1", headers, proxies="10.0.0.0/24, not-an-ip")
    assert (info.ip_address, info.forwarded_trusted) == ("198.51.100.7", True)
    assert info.forwarded_for == "6.6.6.6, 198.51.100.7, 10.0.0.2"


def test_junk_in_the_chain_stops_the_walk():
    info = request_info("10.0.0.1", {"X-Forwarded-For": "evil<script>, 10.0.0.3"}, proxies="10.0.0.0/8")
    assert info.ip_address == "10.0.0.3" and info.forwarded_trusted


def test_loopback_peer_and_no_headers():
    info = request_info(None, {}, from_streamlit=False)
    assert (info.ip_address, info.user_agent, info.forwarded_for) == ("127.0.0.1", None, None)


def test_huge_and_hostile_headers_are_truncated_and_escaped():
    info = request_info("192.0.2.1", {"User-Agent": "A\x00\n" + "u" * 10_000, "X-Forwarded-For": "1" * 10_000},
                        proxies="")
    assert len(info.user_agent) == 512 and info.user_agent.startswith("A\\x00\\x0a")
    assert len(info.forwarded_for) == 512


def test_proxies_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VAULT_TRUSTED_PROXIES", "192.0.2.1")
    info = request_info("192.0.2.1", {"X-Forwarded-For": "198.51.100.20"})
    assert (info.ip_address, info.forwarded_trusted) == ("198.51.100.20", True)
