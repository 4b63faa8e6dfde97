"""The environment overview marks missing, deleted, expiring and rotation-due cells and equal values (AppTest)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.console_fixtures import CANARY, login, texts


def grid(at):
    return next(d.value for d in at.dataframe if "Name" in d.value.columns).set_index("Name")


def test_the_overview_marks_missing_cells_and_equal_values_without_showing_them(console):
    console.store_secret("shared/key", "same-value-91", environment="development")
    console.store_secret("shared/key", "same-value-91", environment="staging")
    console.store_secret("shared/key", "other-value-17", environment="production")
    console.store_secret("soon", "x", environment="testing",
                         expires_at=datetime.now(timezone.utc) + timedelta(days=5, hours=1))
    console.store_secret("gone", "y", environment="staging")
    console.delete_secret("gone", "staging")
    at = login(console, "aud")
    at.switch_page("pages/health.py").run()
    assert not [d for d in at.dataframe if "Name" in d.value.columns]  # drawn only when asked for
    at.toggle(key="ov_show").set_value(True).run()
    g = grid(at)
    assert g.loc["shared/key", "development"] == "present; same value as staging"
    assert g.loc["shared/key", "staging"] == "present; same value as development"
    assert g.loc["shared/key", "production"] == "present"
    assert g.loc["shared/key", "testing"] == "missing"
    assert g.loc["db_url", "production"] == "missing" and g.loc["db_url", "development"] == "present"
    assert g.loc["soon", "testing"] == "expires in 5 days"
    assert g.loc["gone", "staging"] == "deleted"
    shown = texts(at)
    assert "same-value-91" not in shown and CANARY not in shown
    assert console.get_audit_log(operation="read", principal="aud", limit=5) == []  # no value was read


def test_a_rewrite_to_another_value_ends_the_match(console):
    console.store_secret("k", "v1", environment="development")
    console.store_secret("k", "v1", environment="staging")
    console.update_secret("k", "staging", value="v2")
    at = login(console, "ann")
    at.switch_page("pages/health.py").run()
    at.toggle(key="ov_show").set_value(True).run()
    assert grid(at).loc["k", "staging"] == "present"
