"""Grant access from the secret's page; the simulator refuses unknown principals (issue 18; AppTest)."""

from __future__ import annotations

from tests.console_fixtures import CANARY, button, login


def test_an_admin_grants_read_from_the_secret_page_after_review(console):
    at = login(console, "ann")
    at.selectbox(key="secret_pick").select("development/db_url").run()
    sid = console.get_metadata("db_url", "development").id
    who = at.selectbox(key=f"g_who_{sid}")
    assert "user nora" in who.options and "role operator" in who.options and "user ghost" not in who.options
    assert at.selectbox(key=f"g_env_{sid}").value == "development"
    assert at.text_input(key=f"g_pat_{sid}").value == "db_url"
    who.select("user nora")
    at.checkbox(key=f"g_read_{sid}").check()
    button(at, "Review").click().run()
    assert "+ allow read to user nora on development/db_url" in [t.value for t in at.text]
    assert console.list_rules(subject="nora") == []  # reviewed, not applied
    button(at, "Apply").click().run()
    assert "Granted: allow read to user nora on development/db_url." in [s.value for s in at.success]
    with console.security_context("nora"):
        assert console.get_secret("db_url", "development") == CANARY


def test_review_needs_a_subject_and_a_level(console):
    at = login(console, "ann")
    at.selectbox(key="secret_pick").select("development/db_url").run()
    button(at, "Review").click().run()
    assert "Choose a user or role and at least one level." in [e.value for e in at.error]


def test_non_admins_get_no_grant_panel(console):
    at = login(console, "opal")
    at.selectbox(key="secret_pick").select("development/db_url").run()
    assert "Review" not in [b.label for b in at.button]


def test_the_simulator_refuses_an_unknown_principal(console):
    at = login(console, "ann")
    at.switch_page("pages/access.py").run()
    at.text_input(key="sim_who").input("ghost")
    at.text_input(key="sim_name").input("db_url")
    button(at, "Simulate").click().run()
    assert "There is no user named ghost; simulate a user the vault knows." in [e.value for e in at.error]
