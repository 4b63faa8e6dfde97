"""The console's side of issue 17: two-factor on the Account and Users pages (AppTest), the two-step
login and the password policy through the served console's routes (HTTP), and an admin's unlock.

AppTest runs the page scripts against the vault at VAULT_PATH with the real clock, so codes come from
pyotp at the current time (the next step's code is used after a confirmation spent the current one).
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from tests.browser import console_server
from tests.console_fixtures import PW, button, login, texts
from tests.console_http import Client
from tests.test_passwords import STRONG
from vault_core import lockout, open_vault
from vault_core.errors import AccountLocked, LoginFailed, SecondFactorRequired


def next_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30)


def enrol(vault, user: str, roles: list[str]) -> tuple[str, list[str]]:
    with vault.security_context(user, roles=roles):
        shown = vault.enrol_two_factor(user)
        return shown["secret"], vault.confirm_two_factor(user, pyotp.TOTP(shown["secret"]).now())


def test_account_page_enrols_with_a_qr_shows_secret_and_codes_once(console):
    at = login(console, "rita", "pages/account.py")
    button(at, "Set up two-factor sign-in").click().run()
    images = [h.proto.body for h in at.get("html")]
    assert any('<img id="two-factor-qr"' in b and 'src="data:image/svg+xml;base64,' in b for b in images)
    secret = at.code[0].value.replace(" ", "")
    assert pyotp.TOTP(secret).now()  # a valid base32 secret
    at.text_input(key="tf_confirm_code").input(pyotp.TOTP(secret).now())
    at.button[[b.label for b in at.button].index("Confirm and turn on")].click().run()
    codes = at.code[0].value.splitlines()
    assert len(codes) == 10 and "recovery codes" in at.success[0].value
    kept = repr(at.session_state)  # the session's state holds neither the secret nor the codes
    assert secret not in texts(at) and secret not in kept and not any(c in kept for c in codes)
    assert "Every session of yours has ended" in texts(at)  # made with the password alone
    at.run()  # the next run shows neither the secret nor the codes again: the session has ended
    assert "Your session has ended" in texts(at) or "You may not use this page." in texts(at)
    assert not any(c in texts(at) for c in codes) and not any("two-factor-qr" in h.proto.body for h in at.get("html"))
    again = login_with(console, "rita", secret, "pages/account.py")
    assert "Two-factor sign-in is on (10 recovery codes left)." in texts(again)
    with pytest.raises(SecondFactorRequired):
        console.verify_login("rita", PW)


def test_account_page_shows_session_times_in_the_console_format(console):
    at = login(console, "rita", "pages/account.py")
    table = at.dataframe[0].value
    assert str(table["created_at"].dtype).startswith("datetime64") and len(table) == 1


def test_account_page_turns_two_factor_off_with_a_code(console):
    secret, _ = enrol(console, "rita", [])
    at = login_with(console, "rita", secret, "pages/account.py")
    at.text_input(key="tf_off_code").input("000000" if next_code(secret) != "000000" else "111111")
    at.button[[b.label for b in at.button].index("Turn two-factor off (logs out everywhere)")].click().run()
    assert "wrong or already used two-factor code" in texts(at).lower()
    assert console.two_factor_status("rita")[0]["enrolled"]


def login_with(vault, user: str, secret: str, page: str | None = None):
    from streamlit.testing.v1 import AppTest

    from tests.console_fixtures import APP, CONSOLE

    at = AppTest.from_file(str(CONSOLE / page) if page else APP, default_timeout=30)
    at.session_state["vault_session_token"] = vault.verify_login(user, PW, "10.9.8.7", "apptest",
                                                                 code=next_code(secret))
    at.run()
    return at


def test_users_page_shows_status_resets_two_factor_and_requires_it_per_role(console):
    enrol(console, "rita", [])
    at = login(console, "ann", "pages/users.py")
    table = at.dataframe[0].value.set_index("Name")
    assert table.loc["rita", "Two-factor"] == "on (10 recovery codes left)" and table.loc["walt", "Two-factor"] == "off"
    at.selectbox(key="u_pick").select("rita").run()
    button(at, "Reset two-factor").click().run()
    assert any("Two-factor of rita is reset" in s.value for s in at.success)
    assert not console.two_factor_status("rita")[0]["enrolled"]
    row = console.get_audit_log(operation="two_factor_reset", limit=1)[0]
    assert row["principal"] == "ann" and row["secret_name"] == "rita" and row["outcome"] == "allowed"
    at.multiselect(key="u_2fa_roles").select("operator")
    at.button[[b.label for b in at.button].index("Save two-factor policy")].click().run()
    assert "Two-factor is required for: operator." in [s.value for s in at.success]
    opal = login(console, "opal")  # the router: only the Account page, which asks to enrol
    assert "Your role requires two-factor sign-in: set it up here to use the console." in texts(opal)
    secrets_page = login(console, "opal", "pages/secrets.py")
    assert "Your role requires two-factor sign-in" in texts(secrets_page)
    assert console.two_factor_policy() == {"operator": True, "admin": False}


def test_users_page_unlocks_an_account_the_throttle_locked(console):
    for i in range(lockout.ACCOUNT_LIMIT):  # a distributed guessing run: one failure from each of 100 sources
        with pytest.raises(LoginFailed):
            console.verify_login("walt", "wrong guess number", f"10.7.{i // 250}.{i % 250}")
    with pytest.raises(AccountLocked, match="try again after"):
        console.verify_login("walt", PW, "10.9.9.9")  # the owner, from elsewhere
    at = login(console, "ann", "pages/users.py")
    assert at.dataframe[0].value.set_index("Name").loc["walt", "Locked"].startswith("until ")
    at.selectbox(key="u_pick").select("walt").run()
    button(at, "Unlock").click().run()
    assert console.check_session(console.verify_login("walt", PW, "10.9.9.9")) is not None


# -- the served console's routes (HTTP) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("tf") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    vault.add_user("tess", PW, ["operator"], must_change_password=False)
    vault.add_user("newbie", "one time pass 4711", [], must_change_password=True)
    secret, codes = enrol(vault, "tess", ["operator"])
    with console_server(path) as server:
        yield vault, server, secret, codes
    vault.storage.dispose()


def _code_form(text: str) -> str:
    found = re.search(r'<form id="login-code".*?name="csrf" value="([^"]+)"', text, re.S)
    assert found, text[:600]
    return found.group(1)


def test_login_asks_for_the_code_and_sets_the_session_cookie_only_after_it(served):
    vault, server, secret, codes = served
    client = Client(server.url)
    status, headers, text = client.log_in("tess", PW)
    assert status == 200 and 'name="code"' in text and 'autocomplete="one-time-code"' in text
    assert not any(k.endswith("vault_session") for k in client.jar)  # no session yet
    pending = [v for k, v in headers if k.lower() == "set-cookie" and "vault_login_pending" in v]
    assert pending and "HttpOnly" in pending[0] and "SameSite=strict" in pending[0].replace("Strict", "strict")
    csrf = _code_form(text)
    status, _, text = client.request("POST", "/login/code", {"csrf": csrf, "username": "tess", "code": "12345",
                                                              "next": "/"})
    assert status == 401 and "wrong or already used two-factor code" in text
    assert not any(k.endswith("vault_session") for k in client.jar)
    status, headers, _ = client.request("POST", "/login/code", {"csrf": csrf, "username": "tess",
                                                                 "code": codes[0], "next": "/"})
    assert status == 303 and dict(headers)["location"] == "/"
    assert any(k.endswith("vault_session") for k in client.jar) and not any("pending" in k for k in client.jar)
    # without the pending cookie the code step is refused, whatever the code
    stranger = Client(server.url)
    csrf = stranger.csrf()
    status, _, text = stranger.request("POST", "/login/code", {"csrf": csrf, "username": "tess",
                                                                "code": next_code(secret)})
    assert status == 401 and "expired" in text and not stranger.jar.get("vault_session")
    assert secret not in text and not any(c in text for c in codes)


def test_the_password_form_refuses_the_weak_list_and_the_one_time_password(served):
    vault, server, _, _ = served
    client = Client(server.url)
    status, headers, _ = client.log_in("newbie", "one time pass 4711")
    assert status == 303 and dict(headers)["location"] == "/password"
    weak = {"password": "at least 12", "12345678": "at least 12", " " * 8: "at least 12",
            "aaaaaaaa": "at least 12", "newbie-forever-77": "contains the user name",
            "one time pass 4711": "differ from the current", "iloveyou2024!": "common or breached"}
    for pw, why in weak.items():
        csrf = client.csrf("/password")
        status, _, text = client.request("POST", "/password", {"csrf": csrf, "current": "one time pass 4711",
                                                               "new": pw, "again": pw})
        assert status == 400 and why in text, (pw, text[-400:])
        assert pw.strip() in ("", "password") or f">{pw}<" not in text and f'"{pw}"' not in text
    assert vault.check_session(vault.verify_login("newbie", "one time pass 4711")).must_change_password  # unchanged
    csrf = client.csrf("/password")
    status, headers, _ = client.request("POST", "/password", {"csrf": csrf, "current": "one time pass 4711",
                                                              "new": STRONG, "again": STRONG})
    assert status == 303 and dict(headers)["location"] == "/"
    assert not vault.check_session(vault.verify_login("newbie", STRONG)).must_change_password
