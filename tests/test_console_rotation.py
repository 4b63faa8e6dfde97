"""The Rotation page says what it will do before it does it; schedules are set there (issue 18; AppTest)."""

from __future__ import annotations

from types import SimpleNamespace

from tests.console_fixtures import button, login, texts


def test_the_confirmation_lists_the_generator_and_warns_about_a_missing_apply_hook(console):
    console.store_secret("stripe", "whsec_live_abc", secret_type="api_key", environment="development",
                         rotation_interval_days=30)
    at = login(console, "ann")
    at.switch_page("pages/rotation.py").run()
    at.multiselect(key="r_pick").select("development/stripe").run()
    button(at, "Rotate now…").click().run()
    lines = next(d.value for d in at.dataframe if "New value from" in d.value.columns)
    assert lines.to_dict("records") == [{"Secret": "development/stripe", "Type": "api_key",
                                         "New value from": "generator 'token'", "Hooks": ""}]
    (warning,) = at.warning
    assert warning.value.startswith("development/stripe is an API key, and no apply hook is registered for "
                                    "generator 'token' in this console")
    button(at, "Cancel").click().run()
    assert console.get_secret("stripe", "development") == "whsec_live_abc"  # cancelled: nothing rotated
    assert "get a new value now" not in texts(at)


def test_the_plan_names_registered_hooks_and_then_does_not_warn(console):
    from vault_core.console.rotation_view import plan

    console.register_generator("stripe.key", lambda: "whsec_live_new", apply=lambda v: None)
    rows = [{"environment": "production", "name": "stripe", "secret_type": "api_key", "generator": "stripe.key"}]
    lines, warnings = plan(SimpleNamespace(vault=console), rows)
    assert lines.to_dict("records")[0]["Hooks"] == "apply (staged: promoted only if they pass)"
    assert lines.to_dict("records")[0]["New value from"] == "generator 'stripe.key'"
    assert warnings == []
    assert console.rotation_hooks("stripe.key") == {"apply": True, "test": False}
    assert console.rotation_hooks("nothing") == {"apply": False, "test": False}


def test_a_schedule_is_set_from_the_rotation_page_and_shows_at_once(console):
    at = login(console, "ann")
    at.switch_page("pages/rotation.py").run()
    assert "development/db_url" not in at.multiselect(key="r_pick").options
    at.multiselect(key="rs_pick").select("development/db_url").run()
    at.number_input(key="rs_days").set_value(7)
    button(at, "Save schedule").click().run()
    assert "Schedule of 1 secret(s): every 7 days." in [s.value for s in at.success]
    table = next(d.value for d in at.dataframe if "Next rotation" in d.value.columns)
    assert table.to_dict("records")[0]["Rotation"] == "every 7 days"
    assert "development/db_url" in at.multiselect(key="r_pick").options
    assert console.get_metadata("db_url", "development").rotation_interval_days == 7
