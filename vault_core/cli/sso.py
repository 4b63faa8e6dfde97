"""``vault-console sso``: OIDC providers for the console's "Sign in with …", their group mappings and linked
identities (issue 22). Every command is an audited vault operation and needs the admin role (listings:
admin or auditor).

A provider's client secret is a vault secret (``console/sso-<provider>-client-secret`` in
``VAULT_CONSOLE_SSO_ENVIRONMENT``, default ``production``), read from a file or standard input, never from
an argument; the first provider also gets the cookie secret Streamlit signs its login cookie with, made
here at random. Neither is ever printed.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from .. import errors
from ..console.sso import COOKIE_SECRET, client_secret_name, sso_environment
from .common import add_command, confirm, emit, open_for


def _client_secret(source: str) -> str:
    """The client secret from ``source`` (a file, or ``-``: standard input), one trailing newline dropped."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise errors.ValidationError(f"cannot read the client secret file: {exc.strerror}") from None
    text = data.decode("utf-8", errors="strict") if data else ""
    text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    if not text or "\n" in text:
        raise errors.ValidationError("the client secret must be one non-empty line")
    return text


def cmd_provider_set(args: argparse.Namespace) -> int:
    vault = open_for(args)
    env = sso_environment()
    secret = None if args.client_secret_file is None else _client_secret(args.client_secret_file)
    names = {p["name"] for p in vault.list_sso_providers()}
    if secret is None and args.name not in names:
        raise errors.ValidationError("a new provider needs its client secret: --client-secret-file FILE (or - "
                                     "for standard input)")
    name = vault.set_sso_provider(args.name, issuer=args.issuer, client_id=args.client_id,
                                  server_metadata_url=args.metadata_url, allow_create=args.allow_create,
                                  trust_idp_mfa=args.trust_idp_mfa)
    if secret is not None:
        vault.store_secret(name=client_secret_name(name), value=secret, environment=env,
                           description=f"OIDC client secret of the console's SSO provider {name}")
    made_cookie = False
    if vault.get_metadata(COOKIE_SECRET, env) is None:
        vault.store_secret(name=COOKIE_SECRET, value=secrets.token_urlsafe(48), environment=env,
                           description="signs Streamlit's login cookie (console SSO); shared by replicas")
        made_cookie = True
    emit({"provider": name, "client_secret_stored": secret is not None, "cookie_secret_made": made_cookie,
          "note": "restart the console to offer it on the login page"}, args.json)
    return 0


def cmd_provider_list(args: argparse.Namespace) -> int:
    emit(open_for(args).list_sso_providers(), args.json)
    return 0


def cmd_provider_remove(args: argparse.Namespace) -> int:
    if not confirm(args, f"Remove the SSO provider {args.name} and end the sessions of its users?"):
        return 2
    open_for(args).remove_sso_provider(args.name)
    emit({"provider": args.name, "removed": True}, args.json)
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    roles = open_for(args).map_sso_group(args.provider, args.group, args.role)
    emit({"provider": args.provider, "group": args.group, "roles": roles}, args.json)
    return 0


def _removed(args: argparse.Namespace, what: str, gone: bool) -> int:
    """Report an unmap or unlink: exit 5 when there was nothing to remove."""
    emit({"provider": args.provider, what: getattr(args, what), "removed": gone}, args.json)
    return 0 if gone else 5


def cmd_unmap(args: argparse.Namespace) -> int:
    return _removed(args, "group", open_for(args).unmap_sso_group(args.provider, args.group))


def cmd_mappings(args: argparse.Namespace) -> int:
    emit([{**m, "roles": ",".join(m["roles"])} if not args.json else m
          for m in open_for(args).sso_group_mappings()], args.json)
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    user = open_for(args).link_sso_identity(args.provider, args.subject, args.user)
    emit({"provider": args.provider, "subject": args.subject, "principal": user}, args.json)
    return 0


def cmd_unlink(args: argparse.Namespace) -> int:
    return _removed(args, "subject", open_for(args).unlink_sso_identity(args.provider, args.subject))


def add_commands(sub) -> None:
    """Register ``sso`` and its actions (called by ``cli/parser.py``)."""
    p = add_command(sub, "sso", None, "single sign-on for the console: OIDC providers, group mappings, "
                                      "linked identities (admin)")
    ssub = p.add_subparsers(dest="sso_command", required=True, metavar="ACTION")
    a = add_command(ssub, "provider-set", cmd_provider_set, "add or change a provider; its client secret from a "
                                                            "file or standard input")
    a.add_argument("name", help="short name, shown as 'Sign in with <name>'")
    a.add_argument("--issuer", required=True, help="the ID token's iss, e.g. https://login.example.com")
    a.add_argument("--client-id", required=True)
    a.add_argument("--metadata-url", required=True, help="the provider's .well-known/openid-configuration URL")
    a.add_argument("--client-secret-file", help="file holding the client secret (- : standard input); "
                                                "needed for a new provider")
    a.add_argument("--allow-create", action="store_true",
                   help="create a principal at a first login whose groups are mapped")
    a.add_argument("--trust-idp-mfa", action="store_true", help="count the provider's MFA as the console's")
    add_command(ssub, "provider-list", cmd_provider_list, "every provider (no secret shown)")
    a = add_command(ssub, "provider-remove", cmd_provider_remove, "remove a provider; its users' sessions end")
    a.add_argument("name")
    a.add_argument("--yes", action="store_true", help="confirm")
    a = add_command(ssub, "map", cmd_map, "give the members of a provider's group vault roles")
    a.add_argument("provider")
    a.add_argument("group")
    a.add_argument("--role", action="append", required=True, help="a vault role (repeatable)")
    a = add_command(ssub, "unmap", cmd_unmap, "remove a group mapping (exit 5 when there was none)")
    a.add_argument("provider")
    a.add_argument("group")
    add_command(ssub, "mappings", cmd_mappings, "every group mapping")
    a = add_command(ssub, "link", cmd_link, "pre-provision: a provider's subject logs in as a principal")
    a.add_argument("provider")
    a.add_argument("subject", help="the ID token's sub")
    a.add_argument("user", metavar="PRINCIPAL", help="the vault principal it logs in as")
    a = add_command(ssub, "unlink", cmd_unlink, "forget a linked subject (exit 5 when there was none)")
    a.add_argument("provider")
    a.add_argument("subject")
