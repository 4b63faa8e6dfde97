"""Hostile arguments for ``python -m vault_core.cli`` and hostile headers for ``console/request.py``.

Only commands that cannot start servers, run programs or write files at a hostile path are driven
(``serve``, ``metrics``, ``run``, ``backup``, ``restore``, ``export``, ``export-key``, ``import-toml``,
``rekey`` and ``init`` are left out, as is ``--path``).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .common import snapshot, worker_env
from .hostile import INJECTION, any_text, headers, hostile_text

EXIT_CODES = set(range(9))  # documented in vault_core/cli/parser.py
MUTATING = {"put", "rotate", "users"}
arg = st.one_of(st.sampled_from(INJECTION), any_text, st.sampled_from(["development", "production", "fz/a", "5", "0",
                                                                      "api_key", "canary/cli"]), st.integers().map(str),
                st.integers(min_value=300, max_value=20_000).map(lambda n: "n" * n)).map(
    lambda s: s.replace("\x00", "").encode("utf-8", "surrogatepass"))  # argv cannot carry NUL; lone
# surrogates become invalid UTF-8 bytes in argv
TEMPLATES = [
    ["put", arg, "--env", arg, "--type", arg, "--description", arg, "--tag", arg, "--cas", arg],
    ["put", arg, "--rotation-days", arg, "--expires", arg],
    ["get", arg, "--env", arg, "--version", arg], ["get", arg, "--reveal"],
    ["list", "--env", arg, "--type", arg, "--tag", arg, "--prefix", arg, "--search", arg, "--limit", arg],
    ["rotate", arg, "--env", arg, "--generator", arg], ["audit", arg], ["audit", "tail", arg],
    ["users", "roles", arg, arg], ["users", "lock", arg], ["--principal", arg, "list"],
    ["--log-level", arg, "status"], [arg], ["health", arg], ["rotate-due", arg],
]


@dataclass
class CliFigures:
    runs: int = 0
    exit_codes: Counter = field(default_factory=Counter)
    findings: dict[str, str] = field(default_factory=dict)


def run_cli_fuzz(vault, vault_dir: Path, runs: int, canary: str) -> CliFigures:
    """``runs`` CLI invocations with hostile arguments (and a hostile value on stdin for ``put``)."""
    figures = CliFigures()
    env = {**worker_env(), "VAULT_PATH": str(vault_dir), "VAULT_PRINCIPAL": "owner"}

    @settings(max_examples=runs, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def explore(data) -> None:
        template = data.draw(st.sampled_from(TEMPLATES), label="template")
        argv = [data.draw(a) if not isinstance(a, str) else a for a in template]
        stdin = data.draw(st.one_of(st.binary(max_size=100), hostile_text.map(
            lambda s: s.encode("utf-8", "surrogatepass"))), label="stdin")
        before = snapshot(vault)
        proc = subprocess.run([sys.executable, "-m", "vault_core.cli", *argv], input=stdin, capture_output=True,
                              env=env, timeout=120)
        figures.runs += 1
        figures.exit_codes[proc.returncode] += 1
        out = proc.stdout + proc.stderr
        key = template[0] if isinstance(template[0], str) else "any"
        if proc.returncode not in EXIT_CODES:
            figures.findings.setdefault(f"{key}: exit {proc.returncode}", repr(argv)[:200])
        if b"Traceback" in out:
            figures.findings.setdefault(f"{key}: traceback",
                                        f"{argv!r:.200} -> {out.decode(errors='replace')[-1200:]}")
        if canary.encode() in out:
            figures.findings.setdefault(f"{key}: canary value printed", repr(argv)[:200])
        if proc.returncode != 0 and template[0] in MUTATING and snapshot(vault) != before:
            figures.findings.setdefault(f"{key}: failed but changed the vault", repr(argv)[:200])

    explore()
    return figures


@dataclass
class HeaderFigures:
    inputs: int = 0
    findings: dict[str, str] = field(default_factory=dict)


def run_header_fuzz(examples: int) -> HeaderFigures:
    """``request_info`` on hostile peers and headers: never raises, bounded and escaped fields, no trust
    in a forwarded chain unless the peer is a configured proxy."""
    from vault_core.console.request import MAX_FORWARDED, MAX_USER_AGENT, request_info

    figures = HeaderFigures()
    proxies = st.one_of(st.none(), st.sampled_from(["", "10.0.0.0/8", "garbage, 300.1.1.1", "127.0.0.1,::1"]))
    peer = st.one_of(st.none(), st.sampled_from(["10.1.2.3", "8.8.8.8", "::1", "127.0.0.1"]), hostile_text)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(ip=peer, hdrs=headers, prox=proxies)
    def explore(ip, hdrs, prox) -> None:
        figures.inputs += 1
        try:
            info = request_info(ip, hdrs, proxies=prox or "", from_streamlit=False)
        except Exception as exc:  # noqa: BLE001
            figures.findings.setdefault(f"raised {type(exc).__name__}", repr((ip, hdrs))[:200])
            return
        limits = {"ip_address": 64, "user_agent": MAX_USER_AGENT, "forwarded_for": MAX_FORWARDED}
        for name, limit in limits.items():
            text = getattr(info, name)
            if text is None:
                continue
            if any(c in text for c in "\x00\r\n") or len(text) > 4 * limit:
                figures.findings.setdefault(f"{name} unbounded or unescaped", repr(text)[:200])
        if info.forwarded_trusted and not prox:
            figures.findings.setdefault("forwarded chain trusted without proxies", repr(hdrs)[:200])

    explore()
    return figures
