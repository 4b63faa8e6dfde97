"""The router under each role: login, navigation by role, the per-page guard, logout (AppTest)."""

from __future__ import annotations

import pytest

from tests.console_fixtures import CANARY, login, texts
from vault_core.console.roles import PAGES, pages_for


def registered(at, script: str) -> bool:
    """Did the router register ``script`` this run? (AppTest refuses to switch to an unknown page.)"""
    try:
        at.switch_page(script)
    except ValueError as exc:
        assert "Could not find a navigation page" in str(exc)
        return False
    return True


def test_logged_out_sees_only_the_way_to_the_login_route(console):
    at = login(console, None)
    assert not at.exception
    assert [t.value for t in at.title] == ["Vault console"]
    assert not at.text_input  # the password is typed into the /login route's form, never into a run
    assert "[Log in](/login)" in [m.value for m in at.markdown]
    assert CANARY not in texts(at) and "db_url" not in texts(at)
    for script, _, _ in PAGES.values():
        assert not registered(at, script)


@pytest.mark.parametrize("script", [v[0] for v in PAGES.values()])
def test_every_page_refuses_without_a_session(console, script):
    at = login(console, None, page=script)
    assert [e.value for e in at.error] == ["You may not use this page."]
    assert "db_url" not in texts(at) and CANARY not in texts(at)


@pytest.mark.parametrize("user,roles", [("ann", ["admin"]), ("aud", ["auditor"]), ("opal", ["operator"]),
                                        ("rita", []), ("nora", [])])
def test_navigation_holds_only_the_pages_of_the_role(console, user, roles):
    allowed = set(pages_for(roles))
    for key, (script, title, _) in PAGES.items():
        at = login(console, user)
        assert not at.exception
        assert registered(at, script) == (key in allowed), (user, key)
        if key in allowed:
            at.run()
            assert [t.value for t in at.title][:1] == [title] and not at.exception
        page = login(console, user, page=script)  # the page's own check, without the router
        refused = [e.value for e in page.error] == ["You may not use this page."]
        assert refused == (key not in allowed), (user, key)
        if refused:
            continue
        assert [t.value for t in page.title][:1] == [title]


def test_the_user_box_holds_the_logout_form_with_the_csrf_field(console):
    at = login(console, "rita")
    forms = [e.proto.body for e in at.sidebar.get("html")]
    assert any('action="/logout"' in f and 'name="csrf"' in f and "Log out" in f for f in forms), forms


def test_revoked_or_forged_token_shows_login(console):
    at = login(console, "rita")
    assert "db_url" in texts(at)
    console.set_roles("rita", ["auditor"])  # a role change ends older sessions
    at.run()
    assert "db_url" not in texts(at)
    at = login(console, None)
    at.session_state["vault_session_token"] = "forged-token-" + "x" * 30
    at.run()
    assert [t.value for t in at.title] == ["Vault console"]


def test_first_login_shows_only_the_way_to_the_password_route(console):
    console.set_password("nora", "one time pass 1")  # admin reset: must change
    at = login(console, None)
    at.session_state["vault_session_token"] = console.verify_login("nora", "one time pass 1")
    at.run()
    assert "You must choose a new password" in at.warning[0].value
    assert "[Change password](/password)" in [m.value for m in at.markdown]
    assert "db_url" not in texts(at) and not at.text_input


def test_context_carries_user_roles_ip_and_session(console):
    at = login(console, "rita")
    at.selectbox(key="secret_pick").select("development/db_url").run()
    [b for b in at.button if b.label == "Reveal value"][0].click().run()
    row = console.get_audit_log(operation="reveal")[0]
    session = console.check_session(at.session_state["vault_session_token"])
    assert (row["principal"], row["outcome"], row["session_id"]) == ("rita", "allowed", session.session_id)
    assert row["client_ip"] == "127.0.0.1" and row["forwarded_trusted"] in (False, 0)
