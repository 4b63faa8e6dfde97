"""Hostile input strategies (hypothesis) shared by the fuzz tests and the fault suite."""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st

INJECTION = [
    "'; DROP TABLE secrets; --", "\" OR 1=1 --", "x' OR 'a'='a", "%", "_", "%_%", "*", "?", "**/*", "[a-z]*",
    "../../etc/passwd", "..\\..\\windows", "development/../production", "/etc/shadow", "~root", "a//b", "./a",
    "${jndi:ldap://x/a}", "{{7*7}}", "<img src=x onerror=alert(1)>", "javascript:alert(1)", "=cmd|' /C calc'!A0",
    "DEVELOPMENT", " production ", "PRODUCTION\x00", "𝕕𝕖𝕧𝕖𝕝𝕠𝕡𝕞𝕖𝕟𝕥", "ｐｒｏｄ", "a\r\nX-Injected: 1", "line\nbreak",
    "\x00", "a\x00b", "\ud800", "bad\udcffutf8", "\u202eevil", "\ufeffbom", "", " ", "\t", "0", "-1", "1e309",
    "null", "None", "true", "sqlite:///tmp/x", "postgresql://u:p@h/db", "/" * 300, "é" * 300,
]

# Text with every code point category, lone surrogates included (invalid in UTF-8).
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
huge_text = st.integers(min_value=257, max_value=200_000).map(lambda n: "x" * n)
hostile_text = st.one_of(st.sampled_from(INJECTION), any_text, huge_text,
                         st.lists(st.sampled_from(["a", "\r", "\n", "\x00", "/", ".", "*", "'", "é"]),
                                  max_size=20).map("".join))
wrong_type = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(),
                       st.binary(max_size=40), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                       st.just(object()), st.just(datetime(2020, 1, 1)), st.just(b"\xff\xfe\x00invalid"))
hostile_any = st.one_of(hostile_text, wrong_type)
hostile_value = st.one_of(
    hostile_text, st.binary(max_size=200), wrong_type,
    st.integers(min_value=64 * 1024 - 2, max_value=70_000).map(lambda n: b"\xff" * n),  # around the size limit
    st.sampled_from([b"\xc3\x28", b"\xed\xa0\x80", "secret\x00value-abcdef", "\udcff-surrogate-value"]))
hostile_list = st.one_of(hostile_any, st.lists(hostile_any, max_size=4), st.lists(hostile_text, max_size=40))
hostile_int = st.one_of(st.integers(min_value=-2**64, max_value=2**64), hostile_any)

# Header maps as a browser or an attacker sends them.
header_name = st.one_of(st.sampled_from(["User-Agent", "X-Forwarded-For", "user-agent", "x-forwarded-for",
                                         "X-FORWARDED-FOR", "Cookie", "Host"]), any_text)
header_value = st.one_of(hostile_text, st.integers(),
                         st.integers(min_value=1, max_value=100_000).map(lambda n: "1.2.3.4, " * n),
                         st.just("a" * 10_000 + "\r\nSet-Cookie: x=1"))
headers = st.dictionaries(header_name, header_value, max_size=4)
