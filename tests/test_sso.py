"""Single sign-on mapping (issue 22): (issuer, subject) → principal, groups → roles, on SQLite and PostgreSQL.

The claims are what Streamlit's ``st.login`` callback keeps from the ID token; the browser flow against a
real OIDC provider is in tests/e2e/test_sso_e2e.py. Attacks come first: a replayed or stale token, a
claim naming a group nobody mapped, a subject nobody linked, a name collision.
"""

from __future__ import annotations

import json
import time

import pytest

from vault_core import AccessDenied
from vault_core.errors import LoginFailed, NotFound, SecondFactorRequired, ValidationError

ISS = "http://127.0.0.1:9/"
PW = "plum kite saddle 77"


@pytest.fixture
def sso(any_vault):
    v = any_vault
    v.bcrypt_rounds = 4
    v.set_sso_provider("corp", issuer=ISS, client_id="console", server_metadata_url=ISS + ".well-known/x")
    v.map_sso_group("corp", "vault-admins", ["admin"])
    v.map_sso_group("corp", "vault-readers", ["viewer"])
    v.add_user("alice", PW, ["viewer"], must_change_password=False)
    v.link_sso_identity("corp", "sub-alice", "alice")
    return v


def claims(sub="sub-alice", groups=("vault-readers",), iat=None, iss=ISS, **more):
    return {"iss": iss, "sub": sub, "groups": list(groups), "iat": int(time.time()) if iat is None else iat,
            **more}


def _audit(v, operation):
    return v.get_audit_log(operation=operation, limit=50)


def test_a_linked_subject_gets_the_session_and_the_roles_of_its_mapped_groups(sso):
    token = sso.sso_login("corp", claims(groups=["vault-readers", "unmapped-group"]), "10.0.0.5")
    session = sso.check_session(token)
    assert session.user == "alice" and session.roles == ("viewer",)
    rows = _audit(sso, "login")
    assert rows[0]["outcome"] == "allowed" and "issuer=" + ISS in rows[0]["reason"] and "sub-alice" in rows[0]["reason"]


def test_the_roles_come_from_the_mapping_and_follow_it(sso):
    token = sso.sso_login("corp", claims(groups=["vault-admins"]), "10.0.0.5")
    assert sso.check_session(token).roles == ("admin",)


def test_an_unmapped_group_opens_nothing_and_is_audited(sso):
    with pytest.raises(LoginFailed, match="mapped"):
        sso.sso_login("corp", claims(groups=["admins"]), "10.0.0.5")
    row = _audit(sso, "sso_login")[0]
    assert row["outcome"] == "denied" and "subject=sub-alice" in row["reason"] and ISS in row["reason"]


def test_a_group_claim_alone_grants_no_role_that_an_admin_did_not_map(sso):
    with pytest.raises(LoginFailed):
        sso.sso_login("corp", claims(groups=["admin"]), "10.0.0.5")  # a group named like a role


def test_an_unknown_subject_is_refused_unless_the_provider_creates_users(sso):
    with pytest.raises(LoginFailed, match="unknown subject"):
        sso.sso_login("corp", claims(sub="sub-bob"), "10.0.0.5")
    assert "subject=sub-bob" in _audit(sso, "sso_login")[0]["reason"]
    sso.set_sso_provider("corp", issuer=ISS, client_id="console", server_metadata_url=ISS + ".well-known/x",
                         allow_create=True)
    session = sso.check_session(sso.sso_login("corp", claims(sub="sub-bob", email="bob@example.com"), "10.0.0.5"))
    assert session.user.startswith("corp.") and session.roles == ("viewer",)


def test_a_created_user_never_takes_the_name_from_a_claim(sso):
    sso.set_sso_provider("corp", issuer=ISS, client_id="console", server_metadata_url=ISS + ".well-known/x",
                         allow_create=True)
    session = sso.check_session(sso.sso_login(
        "corp", claims(sub="alice", preferred_username="alice", email="alice@example.com"), "10.0.0.5"))
    assert session.user != "alice"


def test_a_token_of_another_issuer_is_refused(sso):
    with pytest.raises(LoginFailed, match="issuer"):
        sso.sso_login("corp", claims(iss="https://evil.example/"), "10.0.0.5")


def test_a_replayed_id_token_opens_no_second_session(sso):
    once = claims()
    token = sso.sso_login("corp", once, "10.0.0.5")
    sso.logout(token)
    with pytest.raises(LoginFailed, match="already used"):
        sso.sso_login("corp", dict(once), "10.0.0.5")


def test_a_stale_id_token_like_a_30_day_streamlit_cookie_is_refused(sso):
    with pytest.raises(LoginFailed, match="not fresh"):
        sso.sso_login("corp", claims(iat=int(time.time()) - 3600), "10.0.0.5")
    with pytest.raises(LoginFailed, match="not fresh"):
        sso.sso_login("corp", claims(iat="now"), "10.0.0.5")


def test_removing_the_group_mapping_ends_the_session(sso):
    token = sso.sso_login("corp", claims(), "10.0.0.5")
    assert sso.check_session(token) is not None
    assert sso.unmap_sso_group("corp", "vault-readers") is True
    assert sso.check_session(token) is None
    with pytest.raises(LoginFailed, match="mapped"):
        sso.sso_login("corp", claims(iat=int(time.time()) + 1), "10.0.0.5")
    row = _audit(sso, "sso_group_unmap")[0]
    assert "group=vault-readers" in row["reason"] and row["outcome"] == "allowed"


def test_a_locked_user_gets_no_sso_session_and_a_lock_ends_one(sso):
    token = sso.sso_login("corp", claims(), "10.0.0.5")
    sso.lock_user("alice")
    assert sso.check_session(token) is None
    with pytest.raises(LoginFailed, match="disabled or locked"):
        sso.sso_login("corp", claims(iat=int(time.time()) + 1), "10.0.0.5")


def test_two_factor_still_applies_unless_the_provider_is_trusted_for_mfa(sso):
    import pyotp

    with sso.security_context("alice", "10.0.0.5", roles=("viewer",)):
        secret = sso.enrol_two_factor("alice")["secret"]
        sso.confirm_two_factor("alice", pyotp.TOTP(secret).now())
    with pytest.raises(SecondFactorRequired) as step:
        sso.sso_login("corp", claims(), "10.0.0.5")
    assert step.value.ticket
    sso.set_sso_provider("corp", issuer=ISS, client_id="console", server_metadata_url=ISS + ".well-known/x",
                         trust_idp_mfa=True)
    assert sso.check_session(sso.sso_login("corp", claims(iat=int(time.time()) + 1), "10.0.0.5")).user == "alice"


def test_mapping_changes_need_admin_and_are_audited(sso):
    with sso.security_context("alice", "10.0.0.5", roles=("viewer",)):
        with pytest.raises(AccessDenied):
            sso.map_sso_group("corp", "vault-readers", ["admin"])
    denied = _audit(sso, "sso_group_map")[0]
    assert denied["outcome"] == "denied"
    assert sso.map_sso_group("corp", "ops", ["operator"]) == ["operator"]
    assert {"issuer": ISS, "group": "ops", "roles": ["operator"]} in sso.sso_group_mappings()


def test_bad_settings_are_refused_without_echoing_them(sso):
    with pytest.raises(ValidationError) as exc:
        sso.set_sso_provider("corp", issuer="javascript:alert(1)", client_id="c", server_metadata_url=ISS)
    assert "alert" not in str(exc.value)
    with pytest.raises(NotFound):
        sso.map_sso_group("nope", "g", ["viewer"])
    with pytest.raises(LoginFailed, match="unknown provider"):
        sso.sso_login("nope", claims(), "10.0.0.5")


def test_no_token_reaches_the_audit_log(sso):
    id_token = "eyJhbGciOiJSUzI1NiJ9.canary-id-token-payload.sig"
    sso.sso_login("corp", claims(groups=["vault-readers"], nonce="n1", at_hash="x"), "10.0.0.5",
                  ua="pytest")
    with pytest.raises(LoginFailed):
        sso.sso_login("corp", {"iss": ISS, "sub": "sub-alice", "id_token": id_token, "iat": 1}, "10.0.0.5")
    assert "canary-id-token" not in json.dumps(sso.get_audit_log(limit=500), default=str)


def test_the_users_page_edits_group_mappings_audited(console):
    from tests.console_fixtures import login, texts

    console.set_sso_provider("corp", issuer=ISS, client_id="console", server_metadata_url=ISS + ".well-known/x")
    console.map_sso_group("corp", "readers", ["auditor"])
    at = login(console, "ann", "pages/users.py")
    assert "readers" in texts(at) and not at.exception
    at.text_input(key="sso_group").set_value("platform")
    at.multiselect(key="sso_roles").set_value(["operator"])
    [b for b in at.button if b.label.startswith("Save group mapping")][0].click().run()
    assert "Group platform of corp: operator." in texts(at)
    assert {"issuer": ISS, "group": "platform", "roles": ["operator"]} in console.sso_group_mappings()
    row = console.get_audit_log(operation="sso_group_map", limit=1)[0]
    assert row["user_id"] == "ann" and "group=platform" in row["reason"]
    at.text_input(key="sso_group").set_value("readers")
    at.multiselect(key="sso_roles").set_value([])
    [b for b in at.button if b.label.startswith("Save group mapping")][0].click().run()
    assert "mapping removed" in texts(at)
    assert all(m["group"] != "readers" for m in console.sso_group_mappings())


def test_an_admin_makes_a_user_sso_only(sso):
    password_token = sso.verify_login("alice", PW, "10.0.0.5")
    sso.add_user("bob", PW, ["viewer"], must_change_password=False)
    with pytest.raises(ValidationError, match="no SSO identity"):
        sso.make_sso_only("bob")  # nothing linked: bob could not log in at all
    with sso.security_context("bob", "10.0.0.6"):
        with pytest.raises(AccessDenied):
            sso.make_sso_only("alice")
    sso.make_sso_only("alice")
    assert sso.check_session(password_token) is None  # the password session ended with it
    with pytest.raises(LoginFailed):
        sso.verify_login("alice", PW, "10.0.0.5")
    assert sso.check_session(sso.sso_login("corp", claims(), "10.0.0.5")).user == "alice"
    row = _audit(sso, "user_sso_only")[0]
    assert row["outcome"] == "allowed" and row["secret_name"] == "alice" and "password login removed" in row["reason"]
    assert sso.verify_login("bob", PW, "10.0.0.6")  # nobody else lost theirs


def test_the_users_page_makes_a_user_sso_only(console):
    from tests.console_fixtures import PW as PW_CONSOLE, login, texts

    console.set_sso_provider("corp", issuer=ISS, client_id="console", server_metadata_url=ISS + ".well-known/x")
    console.link_sso_identity("corp", "sub-nora", "nora")
    at = login(console, "ann", "pages/users.py")
    at.selectbox(key="u_pick").set_value("nora").run()
    [b for b in at.button if b.label == "SSO only"][0].click().run()
    assert not at.exception
    assert "nora signs in through SSO only: the password is removed and their sessions have ended." in texts(at)
    with pytest.raises(LoginFailed):
        console.verify_login("nora", PW_CONSOLE, "10.0.0.5")
    assert console.get_audit_log(operation="user_sso_only", limit=1)[0]["user_id"] == "ann"


def test_the_cli_sets_up_a_provider_its_secrets_mappings_and_links_audited(tmp_path, capsys, monkeypatch):
    """``vault-console sso``: the client secret comes from a file (never argv, never printed) into the vault,
    with a cookie secret made once; the console's start-up builds Streamlit's [auth] from what it stored."""
    from vault_core import open_vault
    from vault_core.cli import main as cli
    from vault_core.console.sso import COOKIE_SECRET, auth_secrets, client_secret_name

    monkeypatch.setenv("VAULT_PRINCIPAL", "owner")
    monkeypatch.delenv("VAULT_DATABASE_URL", raising=False)
    monkeypatch.delenv("VAULT_CONSOLE_SSO_ENVIRONMENT", raising=False)
    vault = open_vault(tmp_path / "cli-vault", principal="owner")
    vault.bcrypt_rounds = 4
    vault.add_user("alice", "correct horse battery staple 42", roles=["viewer"], must_change_password=False)
    path, secret_file = str(vault.vault_dir), tmp_path / "client-secret"
    secret_file.write_text("canary-client-secret-0123456789\n")
    base = ["--path", path, "--json", "sso"]
    settings = ["--issuer", ISS, "--client-id", "vault-console",
                "--metadata-url", ISS + "/.well-known/openid-configuration"]
    assert cli([*base, "provider-set", "corp", *settings]) == 2  # a new provider needs its client secret
    assert "client-secret-file" in capsys.readouterr().err
    assert cli([*base, "provider-set", "corp", *settings, "--client-secret-file", str(secret_file)]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["cookie_secret_made"] is True and "canary-client-secret" not in out
    assert vault.get_secret(client_secret_name("corp"), environment="production") == \
        "canary-client-secret-0123456789"
    cookie = vault.get_secret(COOKIE_SECRET, environment="production")
    assert len(cookie) >= 32
    assert cli([*base, "provider-set", "corp", *settings, "--allow-create"]) == 0  # the secrets stay
    assert json.loads(capsys.readouterr().out)["cookie_secret_made"] is False
    assert vault.get_secret(COOKIE_SECRET, environment="production") == cookie
    assert cli([*base, "map", "corp", "vault-readers", "--role", "viewer"]) == 0
    assert cli([*base, "link", "corp", "sub-alice", "alice"]) == 0
    assert cli([*base, "mappings"]) == 0 and cli([*base, "provider-list"]) == 0
    out = capsys.readouterr().out
    assert "vault-readers" in out and '"allow_create": true' in out and "canary" not in out
    section = auth_secrets(vault, "http://localhost:8501/oauth2callback", "production")["auth"]
    assert section["corp"]["client_secret"] == "canary-client-secret-0123456789"
    assert section["cookie_secret"] == cookie
    assert vault.check_session(vault.sso_login("corp", claims())).user == "alice"
    assert cli([*base, "unlink", "corp", "sub-alice"]) == 0
    assert cli([*base, "unlink", "corp", "sub-alice"]) == 5
    assert cli([*base, "unmap", "corp", "vault-readers"]) == 0
    assert cli([*base, "provider-remove", "corp"]) == 2  # not confirmed, no terminal
    assert cli([*base, "provider-remove", "corp", "--yes"]) == 0
    ops = [r["operation"] for r in vault.get_audit_log(limit=100)]
    for op in ("sso_provider_set", "sso_group_map", "sso_identity_link", "sso_identity_unlink",
               "sso_group_unmap", "sso_provider_remove"):
        assert op in ops
    assert "canary-client-secret" not in json.dumps(vault.get_audit_log(limit=100), default=str)
    vault.storage.dispose()
