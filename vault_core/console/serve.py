"""``vault-console serve``: create the vault and a first admin if needed, then run the console."""

from __future__ import annotations

import argparse
import os
import secrets as pysecrets
import subprocess
import sys
from pathlib import Path

from ..vault import Vault, open_vault
from .demo import seed_demo

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
FIRST_ADMIN = "admin"


def ensure_first_admin(vault: Vault) -> str | None:
    """Create ``admin`` with a random one-time password unless an admin who can log in exists.

    Returns the password (to print once) or None. The admin must change it at first login.
    """
    for p in vault.list_principals():
        if "admin" in p["roles"] and p["has_password"] and p["kind"] == "user":
            return None
    password = pysecrets.token_urlsafe(15)
    if any(p["name"] == FIRST_ADMIN for p in vault.list_principals()):
        vault.set_roles(FIRST_ADMIN, ["admin"])
        vault.set_password(FIRST_ADMIN, password, must_change=True)
    else:
        vault.add_user(FIRST_ADMIN, password, ["admin"], display_name="First admin", must_change_password=True)
    return password


def prepare(path: str | None, demo: bool, out=sys.stdout) -> Path:
    """Everything ``serve`` does before starting Streamlit; returns the vault folder."""
    vault = open_vault(path, create=True)  # as the process identity, the vault's owner
    try:
        password = ensure_first_admin(vault)
        if password:
            print(f"First admin created. User: {FIRST_ADMIN}  one-time password: {password}", file=out)
            print("You will be asked to change it at the first login. It is not shown again.", file=out)
        if demo:
            for user, pw in sorted(seed_demo(vault).items()):
                print(f"Demo user created. User: {user}  one-time password: {pw}", file=out)
        return Path(vault.vault_dir)
    finally:
        vault.storage.dispose()


def main(args: argparse.Namespace) -> int:
    """Prepare the vault, then ``streamlit run streamlit_app.py`` on --address/--port."""
    vault_dir = prepare(getattr(args, "path", None), bool(getattr(args, "demo", False)))
    out = sys.stdout
    out.flush()
    # uvicorn (Streamlit's server) would otherwise believe X-Forwarded-For from loopback peers and
    # hand us the claimed address as the peer; proxy trust is VAULT_TRUSTED_PROXIES' job alone.
    env = dict(os.environ, VAULT_PATH=str(vault_dir), FORWARDED_ALLOW_IPS="")
    env.setdefault("VAULT_SCHEDULER", "on")  # the console process runs due rotations (once across replicas)
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(args.port),
           "--server.address", str(args.address)]
    try:
        return subprocess.call(cmd, cwd=str(ROOT), env=env)  # cwd: .streamlit/config.toml applies
    except KeyboardInterrupt:
        return 0
