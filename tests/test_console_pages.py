"""Audit, Health, Users, Access and Rotation pages (issue 6) under the roles that may use them (AppTest).

Which role may open which page (and that the others are refused) is covered
for every page and role in test_console_router.py.
"""

from __future__ import annotations

import pandas as pd

from tests.console_fixtures import CANARY, PW, button, login, texts
from vault_core.console.access_view import diff_rules
from vault_core.types import US_PER_DAY


def test_audit_filters_pages_verifies_exports_and_finds_a_hash(console):
    for i in range(105):
        console.get_secret("db_url", "development")
    at = login(console, "aud", page=None)
    at.switch_page("pages/audit.py").run()
    table = at.dataframe[0].value
    assert len(table) == 100 and list(table["seq"]) == sorted(table["seq"], reverse=True)
    button(at, "Older").click().run()
    assert at.dataframe[0].value["seq"].max() < table["seq"].min()
    assert "Reveal" not in at.selectbox(key="a_operation").options  # picked from the log, not typed
    at.selectbox(key="a_operation").select("store").run()
    assert set(at.dataframe[0].value["operation"]) == {"store"}
    at.selectbox(key="a_operation").select("any operation")
    at.selectbox(key="a_principal").select("aud").run()
    assert set(at.dataframe[0].value["principal"]) == {"aud"}
    at.selectbox(key="a_principal").select("anyone")
    at.selectbox(key="a_operation").select("store").run()
    button(at, "Verify the hash chain").click().run()
    assert at.success[0].value.startswith("Chain intact")
    bar = at.get("progress")[0].proto  # the walk's progress bar, full at the end
    assert bar.value == 100 and bar.text.startswith("Verified ") and bar.text.endswith(" rows")
    link = at.get("link_button")[0].proto  # the export route audits the download (tests/test_console_asgi.py)
    assert (link.label, link.url) == ("Download audit.csv", "/export/audit.csv?operation=store")
    [t for t in at.text_input if t.label.startswith("Check whether")][0].input(CANARY)
    button(at, "Look up").click().run()
    found = at.dataframe[-1].value
    assert list(found["secret_name"]) == ["db_url"] and list(found["operation"]) == ["store"]
    assert CANARY not in texts(at)
    for i in range(10):  # the 11th lookup in a minute is refused, and the page says so
        [t for t in at.text_input if t.label.startswith("Check whether")][0].input(f"guess-{i}")
        button(at, "Look up").click().run()
    assert "10 value lookups a minute" in at.error[-1].value


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
    button(at, "Rotate now…").click().run()
    assert "2 secret(s) get a new value now" in texts(at)  # nothing yet: the dialog says what it will do
    assert console.get_metadata("api_token", "development").current_version == 1
    button(at, "Rotate 2 secret(s) now").click().run()
    assert "Rotated 2 of 2 secret(s)." in [s.value for s in at.success]
    assert list(at.dataframe[0].value["Outcome"]) == ["rotated", "rotated"]
    assert console.get_secret("db_url", "development") != CANARY
    assert console.get_metadata("api_token", "development").current_version == 2
    at.run()
    history = at.dataframe[-1].value
    assert (history["Operation"] == "rotate").sum() >= 2


def _plan(console, after_rows):
    """The plan the Review button would store, from an edited copy of the editor's table."""
    from vault_core.console.access_view import FIELDS, _row

    before = pd.DataFrame([_row(r) for r in console.list_rules() if r.id > 0], columns=["id"] + FIELDS)
    after = pd.concat([before, pd.DataFrame(after_rows, columns=["id"] + FIELDS)], ignore_index=True)
    return before, after


def test_apply_changes_revokes_then_grants_and_stops_at_the_first_refusal(console):
    from vault_core.console.access_view import apply_changes

    walt = next(r.id for r in console.list_rules(subject="walt"))
    before, after = _plan(console, [[None, "user", "walt", "staging", "*", "read", "allow", "moved"]])
    after = after[after["id"] != walt]
    revoke, grant, errors = diff_rules(before, after)
    assert (revoke, errors) == ([walt], []) and [g["environment"] for g in grant] == ["staging"]
    assert apply_changes(console, revoke, grant) == (2, None)
    assert [(r.environment, r.note) for r in console.list_rules(subject="walt")] == [("staging", "moved")]
    done, problem = apply_changes(console, [walt, 999], grant)  # walt's old rule is gone already
    assert done == 0 and problem
    with console.security_context("walt", roles=()):  # a non-admin gets nothing applied either
        done, problem = apply_changes(console, [], grant)
    assert done == 0 and "admin" in problem.lower()


def test_access_confirm_step_applies_the_reviewed_plan(console):
    from vault_core.console.access_view import PLAN, describe

    before, after = _plan(console, [[None, "user", "nora", "development", "db_*", "read, write", "allow", ""],
                                    [None, None, None, None, None, None, None, None]])  # a blank new row
    revoke, grant, errors = diff_rules(before, after)
    assert (revoke, errors, len(grant)) == ([], [], 1)
    at = login(console, "ann")
    at.switch_page("pages/access.py").run()
    assert not [b for b in at.button if b.label.startswith("Apply")]  # nothing reviewed yet
    at.session_state[PLAN] = {"revoke": revoke, "grant": grant}
    at.run()
    assert "+ allow read,write to user nora on development/db_*" in texts(at)
    assert describe(at.session_state[PLAN]) == ["+ allow read,write to user nora on development/db_*"]
    button(at, "Apply 1 change(s)").click().run()
    assert not at.exception
    assert "Applied 1 change(s)." in [s.value for s in at.success]
    assert PLAN not in at.session_state
    rule = console.list_rules(subject="nora")[0]
    assert (rule.pattern, sorted(lv.value for lv in rule.levels)) == ("db_*", ["read", "write"])
    assert console.get_audit_log(operation="rule_add", principal="ann")[0]["outcome"] == "allowed"
    with console.security_context("nora"):
        assert console.get_secret("db_url", "development") == CANARY
    at.session_state[PLAN] = {"revoke": [rule.id], "grant": []}  # review, then discard
    at.run()
    button(at, "Discard").click().run()
    assert PLAN not in at.session_state and console.list_rules(subject="nora")


def test_access_confirm_step_reports_where_it_stopped(console):
    from vault_core.console.access_view import PLAN

    at = login(console, "ann")
    at.switch_page("pages/access.py").run()
    at.session_state[PLAN] = {"revoke": [999], "grant": []}
    at.run()
    button(at, "Apply 1 change(s)").click().run()
    assert at.error[0].value.startswith("Stopped after 0 change(s):")


def test_rotation_page_reverts_to_the_previous_value(console):
    console.update_secret("db_url", "development", rotation_interval_days=30)
    console.rotate_secret(name="db_url", environment="development")
    assert console.get_secret("db_url", "development") != CANARY
    at = login(console, "opal")
    at.switch_page("pages/rotation.py").run()
    at.multiselect(key="r_pick").select("development/db_url").run()
    button(at, "Revert to previous").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("Reverted development/db_url: the previous value is current again (version 3).")
    assert console.get_secret("db_url", "development") == CANARY
    assert console.get_audit_log(operation="revert", principal="opal")[0]["outcome"] == "allowed"
    assert "Rotate all due" not in [b.label for b in at.button]  # scheduled rotation is for admins


def test_rotation_page_rotates_all_due_secrets_as_the_scheduler(console):
    now = console.clock
    console.clock = lambda: now() - 30 * US_PER_DAY - 3_600_000_000  # set 30 days and an hour ago: due an hour ago
    console.update_secret("db_url", "development", rotation_interval_days=30)
    console.clock = now
    console.store_secret("api_token", "t0", environment="development", rotation_interval_days=7)
    at = login(console, "ann")
    at.switch_page("pages/rotation.py").run()
    button(at, "Rotate all due").click().run()
    assert not at.exception and not at.error
    assert "Rotated 1, failed 0." in [s.value for s in at.success]
    assert console.get_metadata("db_url", "development").current_version == 2
    assert console.get_metadata("api_token", "development").current_version == 1
    row = console.get_audit_log(operation="rotate", name="db_url")[0]
    assert row["principal"] == "system:scheduler" and row["outcome"] == "allowed"


def test_health_charts_are_rebuilt_only_when_their_counts_change(console):
    import json

    from vault_core.console.health_view import FIGURES

    at = login(console, "ann")
    at.switch_page("pages/health.py").run()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert [s["data"][0]["type"] for s in specs] == ["bar", "pie", "bar"]
    assert dict(zip(specs[0]["data"][0]["x"], specs[0]["data"][0]["y"], strict=True)) == {
        "development": 1, "production": 1}
    assert {t["name"] for t in specs[2]["data"]} >= {"allowed"}  # one trace per outcome, stacked by day
    first = at.session_state[FIGURES]
    at.run()  # a refresh with the same counts reuses the figures
    assert at.session_state[FIGURES][1] is first[1]
    console.store_secret("new_one", "v", environment="staging")
    at.run()
    assert at.session_state[FIGURES][0] != first[0]
    env_chart = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert dict(zip(env_chart["x"], env_chart["y"], strict=True))["staging"] == 1


def test_audit_date_range_and_outcome_are_picked(console):
    from datetime import date, datetime, timezone

    with console.security_context("rita"):
        console.get_secret("db_url", "development")
    at = login(console, "aud")
    at.switch_page("pages/audit.py").run()
    at.date_input(key="a_dates").set_value((date(2020, 1, 1), date(2020, 1, 2))).run()
    assert at.dataframe[0].value.empty
    today = datetime.now(timezone.utc).date()
    at.date_input(key="a_dates").set_value((today, today))
    at.selectbox(key="a_outcome").select("allowed")
    at.selectbox(key="a_principal").select("rita").run()
    table = at.dataframe[0].value
    assert not table.empty
    assert set(table["outcome"]) == {"allowed"} and set(table["principal"]) == {"rita"}


def test_health_says_the_chain_status_as_a_sentence_and_ages_in_words(console):
    at = login(console, "ann")
    at.switch_page("pages/health.py").run()
    assert "Not verified since this console started: use Verify the hash chain on the Audit page." in texts(at)
    terms = next(d.value for d in at.dataframe if "Age" in d.value.columns)
    assert terms["Age"].str.fullmatch(r"\d+ (second|minute|hour|day|year)s?").all()
