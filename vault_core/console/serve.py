"""``vault-console serve``: check it can start, create the vault and a first admin if needed, run the st.App."""

from __future__ import annotations

import argparse
import os
import secrets as pysecrets
import socket
import sys
from pathlib import Path

from ..vault import Vault, open_vault
from .demo import role_of, seed_demo

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
                print(f"Demo user created. User: {user}  role: {role_of(user)}  one-time password: {pw}", file=out)
        return Path(vault.vault_dir)
    finally:
        vault.storage.dispose()


def check_can_start(address: str, port: int) -> None:
    """Fail before anything is created: the packaged router, the server and the port must be there.

    Raises ``ValidationError`` with the reason.
    """
    from ..errors import ValidationError
    from .app import ROUTER

    if not ROUTER.is_file():
        raise ValidationError(f"the console's router is missing from the installation: {ROUTER}")
    try:
        import uvicorn  # noqa: F401  (st.App's server)
    except ImportError:
        raise ValidationError("uvicorn is not installed: pip install 'uvicorn>=0.30'") from None
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise ValidationError(f"cannot listen on {address}:{port}: {exc.strerror}") from None


def main(args: argparse.Namespace) -> int:
    """Check the port, prepare the vault, then run the console's st.App in this process until a signal.

    SIGINT and SIGTERM stop uvicorn, whose shutdown runs the app's lifespan end
    (scheduler and metrics stop, the vault closes): nothing outlives the command.
    """
    address, port = str(args.address), int(args.port)
    check_can_start(address, port)
    api_port = getattr(args, "api_port", None)
    if api_port:
        check_can_start(address, int(api_port))
    vault_dir = prepare(getattr(args, "path", None), bool(getattr(args, "demo", False)))
    sys.stdout.flush()
    os.environ["VAULT_PATH"] = str(vault_dir)
    # uvicorn would otherwise believe X-Forwarded-For from loopback peers and hand us the claimed
    # address as the peer; proxy trust is VAULT_TRUSTED_PROXIES' job alone.
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    os.environ.setdefault("VAULT_SCHEDULER", "on")  # the console process runs due rotations (once across replicas)
    from .app import HARDENED, ROUTER, build_app

    # App.run takes the launcher from argv[0] and puts its folder first on sys.path; the
    # vault-console script's folder is harmless, but `python -m vault_core.cli` would put vault_core/
    # (whose streamlit.py shadows Streamlit) there. The router's own folder is what `streamlit run` uses.
    sys.argv = [str(ROUTER)]
    if api_port:  # the HTTP API alone on its own port (optionally TLS), same process and vault
        from ..api.asgi import start_api_server

        start_api_server(address, int(api_port), getattr(args, "api_cert", None), getattr(args, "api_key", None))
    build_app().run(config={**HARDENED, "server.port": port, "server.address": address})
    return 0
