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


def test_the_rule_grid_picks_levels_from_a_list(console):
    import json

    at = login(console, "ann")
    at.switch_page("pages/access.py").run()
    (grid,) = [d for d in at.dataframe if d.proto.editing_mode]  # the editor, not the built-ins
    config = json.loads(grid.proto.columns)["levels"]
    assert config["type_config"] == {"type": "multiselect", "options": [{"value": lv} for lv in ("read", "write", "rotate", "admin")],
                                     "accept_new_options": False}
    assert config["label"] == "Levels"


def test_a_rule_row_is_checked_only_once_it_is_complete():
    import pandas as pd

    from vault_core.console.access_view import FIELDS, diff_rules

    cols = ["id"] + FIELDS
    before = pd.DataFrame([[1, "user", "rita", "development", "*", ["read", "write"], "allow", ""]], columns=cols)
    after = pd.DataFrame([[1, "user", "rita", "development", "*", ["write", "read"], "allow", ""],  # same rule
                          [None, "user", "bad name!", "*", "*", [], "allow", ""],  # still being filled in
                          [None, None, None, None, None, ["read"], None, None],
                          [None, "user", "uma", "*", "app/*", ["write", "read"], "allow", ""]], columns=cols)
    revoke, grant, errors = diff_rules(before, after)
    assert revoke == [] and [(g["subject"], g["levels"]) for g in grant] == [("uma", "read,write")]
    assert errors == ["row 2 is not finished: give it at least one level",  # no word yet about its name
                      "row 3 is not finished: give it a subject"]
