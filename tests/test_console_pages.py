"""Audit, Health, Users, Access and Rotation pages (issue 6) under the roles that may use them (AppTest).

Which role may open which page (and that the others are refused) is covered
for every page and role in test_console_router.py.
"""

from __future__ import annotations

import pandas as pd

from tests.console_fixtures import CANARY, PW, button, login, texts
from vault_core.console.access_view import diff_rules


def test_audit_filters_pages_verifies_exports_and_finds_a_hash(console):
    for i in range(105):
        console.get_secret("db_url", "development")
    at = login(console, "aud", page=None)
    at.switch_page("pages/audit.py").run()
    table = at.dataframe[0].value
    assert len(table) == 100 and list(table["seq"]) == sorted(table["seq"], reverse=True)
    button(at, "Older").click().run()
    assert at.dataframe[0].value["seq"].max() < table["seq"].min()
    at.text_input(key="a_operation").input("store").run()
    assert set(at.dataframe[0].value["operation"]) == {"store"}
    button(at, "Verify the hash chain").click().run()
    assert at.success[0].value.startswith("Chain intact")
    button(at, "Prepare export").click().run()
    assert at.get("download_button")
    assert console.get_audit_log(operation="audit_export")[0]["principal"] == "aud"
    [t for t in at.text_input if t.label.startswith("Check whether")][0].input(CANARY)
    button(at, "Look up").click().run()
    found = at.dataframe[-1].value
    assert list(found["secret_name"]) == ["db_url"] and list(found["operation"]) == ["store"]
    assert CANARY not in texts(at)


def test_audit_shows_where_the_chain_breaks(console):
    from sqlalchemy import update

    from vault_core.storage.schema import audit_log

    with console.storage.transaction() as tx:
        tx.conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(reason="edited"))
    at = login(console, "ann")
    at.switch_page("pages/audit.py").run()
    button(at, "Verify the hash chain").click().run()
    assert "first bad row is 3" in at.error[0].value


def test_health_shows_figures_and_charts(console):
    at = login(console, "ann")
    at.switch_page("pages/health.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Secrets"] == "2" and int(metrics["Audit rows"]) > 0
    assert len(at.get("plotly_chart")) >= 2


def test_users_page_adds_locks_unlocks_and_resets(console):
    at = login(console, "ann")
    at.switch_page("pages/users.py").run()
    at.text_input(key="u_new_name").input("newbie")
    at.multiselect(key="u_new_roles").select("operator")
    button(at, "Add user").click().run()
    password = at.code[0].value
    session = console.check_session(console.verify_login("newbie", password))
    assert session.roles == ("operator",) and session.must_change_password
    token = console.verify_login("rita", PW)
    at.selectbox(key="u_pick").select("rita").run()
    button(at, "Lock").click().run()
    assert console.check_session(token) is None
    assert "rita is locked and logged out." in [s.value for s in at.success]
    button(at, "Unlock").click().run()
    token = console.verify_login("rita", PW)
    button(at, "Reset password").click().run()
    assert console.check_session(token) is None
    new = at.code[0].value
    assert console.check_session(console.verify_login("rita", new)).must_change_password
    ops = [r["operation"] for r in console.get_audit_log(principal="ann", limit=50)]
    assert {"user_add", "user_lock", "user_unlock", "password_set"} <= set(ops)


def test_access_simulator_and_role_table(console):
    at = login(console, "ann")
    at.switch_page("pages/access.py").run()
    assert not at.exception
    at.text_input(key="sim_who").input("rita")
    at.selectbox(key="sim_env").select("development")
    at.text_input(key="sim_name").input("db_url")
    button(at, "Simulate").click().run()
    assert "rita (roles: none) on development/db_url: read" in texts(at)
    holders = at.dataframe[-1].value
    assert "rita" in set(holders["principal"]) and "walt" not in set(holders["principal"])


def test_rule_diff_validates_and_lists_revokes_and_grants():
    cols = ["id", "subject_kind", "subject", "environment", "pattern", "levels", "effect", "note"]
    before = pd.DataFrame([[1, "user", "rita", "development", "*", "read", "allow", ""],
                           [2, "user", "walt", "development", "*", "write", "allow", ""]], columns=cols)
    after = pd.DataFrame([[1, "user", "rita", "development", "*", "read,write", "allow", ""],
                          [None, "role", "Ops", "*", "app/*", "rotate", "allow", ""],
                          [None, "user", "bad name!", "*", "*", "read", "allow", ""],
                          [None, "user", "x", "*", "*", "fly", "allow", ""]], columns=cols)
    revoke, grant, errors = diff_rules(before, after)
    assert revoke == [1, 2]
    assert [(g["subject"], g["levels"]) for g in grant] == [("rita", "read,write"), ("ops", "rotate")]
    assert len(errors) == 2 and errors[0].startswith("row 3:") and "AccessLevel" in errors[1]


def test_rotation_page_rotates_many_and_shows_history(console):
    console.update_secret("db_url", "development", rotation_interval_days=30)
    console.store_secret("api_token", "t0", environment="development", rotation_interval_days=7)
    at = login(console, "opal")
    at.switch_page("pages/rotation.py").run()
    assert not at.exception
    at.multiselect(key="r_pick").select("development/db_url").select("development/api_token").run()
    button(at, "Rotate now").click().run()
    assert list(at.dataframe[1].value["outcome"]) == ["rotated", "rotated"]
    assert console.get_secret("db_url", "development") != CANARY
    assert console.get_metadata("api_token", "development").current_version == 2
    at.run()
    history = at.dataframe[-1].value
    assert (history["operation"] == "rotate").sum() >= 2
