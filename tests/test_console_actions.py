"""Every console action shows its result at once (issue 18, item 1): AppTest, asserting what the page SHOWS.

Each test does one action and then looks only at the page of that same
``run()`` (the rerun the action asked for included): the confirmation is
there, and the tables, details and pickers already show the new state.
"""

from __future__ import annotations

from tests.console_fixtures import CANARY, button, login, texts


def open_secret(at, label: str):
    at.selectbox(key="secret_pick").select(label).run()
    assert not at.exception
    return at


def details(at) -> dict[str, str]:
    """The field/value table of the open secret."""
    table = next(d.value for d in at.dataframe if list(d.value.columns) == ["field", "value"])
    return dict(zip(table["field"], table["value"], strict=True))


def keyed(widgets, prefix: str):
    """The one widget whose key starts with ``prefix`` (edit inputs are keyed by the secret's state)."""
    (found,) = [w for w in widgets if w.key and w.key.startswith(prefix)]
    return found


def messages(at) -> list[str]:
    return [m.value for m in at.success] + [t.value for t in at.toast]


def test_save_shows_the_new_version_description_and_tags_at_once(console):
    at = open_secret(login(console, "ann"), "development/db_url")
    keyed(at.text_area, "edit_").input("second-value")
    keyed(at.text_area, "e_desc_").input("the new description")
    keyed(at.text_input, "e_tags_").input("core, fresh")
    button(at, "Save").click().run()
    assert not at.exception
    assert "Saved development/db_url: version 2." in messages(at)
    assert details(at)["Current version"] == "2"
    shown = [t.value for t in at.text]
    assert "the new description" in shown and "core, fresh" in shown
    assert keyed(at.text_area, "e_desc_").value == "the new description"
    assert keyed(at.text_area, "edit_").value == ""
    versions = next(d.value for d in at.dataframe if "Label" in d.value.columns)
    assert list(versions["Version"]) == [2, 1]


def test_reveal_then_hide(console):
    at = open_secret(login(console, "ann"), "development/db_url")
    button(at, "Reveal value").click().run()
    assert [c.value for c in at.code if c.value == CANARY]
    button(at, "Hide value").click().run()
    assert CANARY not in texts(at) and "Value: ••••••••" in texts(at)


def test_delete_says_so_and_the_picker_forgets_the_name(console):
    at = open_secret(login(console, "ann"), "development/db_url")
    button(at, "Delete…").click().run()
    button(at, "Delete").click().run()
    assert not at.exception
    assert "Deleted development/db_url. An admin can restore it." in messages(at)
    assert "development/db_url" not in at.selectbox(key="secret_pick").options
    assert "db_url" not in set(at.dataframe[0].value["Name"])


def test_restore_shows_the_secret_live_again(console):
    console.delete_secret("db_url", "development")
    at = login(console, "ann")
    at.toggle(key="f_deleted").set_value(True).run()
    open_secret(at, "development/db_url")
    assert details(at)["Deleted"] != ""
    button(at, "Restore").click().run()
    assert not at.exception
    assert "Restored development/db_url." in messages(at)
    assert details(at)["Deleted"] == ""
    labels = [b.label for b in at.button]
    assert "Restore" not in labels and "Purge…" not in labels and "Reveal value" in labels


def test_purge_says_so_and_the_name_is_gone(console):
    console.delete_secret("db_url", "development")
    at = login(console, "ann")
    at.toggle(key="f_deleted").set_value(True).run()
    open_secret(at, "development/db_url")
    button(at, "Purge…").click().run()
    at.text_input(key="purge_name").input("db_url").run()
    button(at, "Purge").click().run()
    assert "Purged development/db_url and every version." in messages(at)
    assert "development/db_url" not in at.selectbox(key="secret_pick").options


def test_create_shows_the_new_secret_in_the_table(console):
    at = login(console, "ann")
    at.text_input(key="new_name").input("fresh/key")
    at.selectbox(key="new_env").select("development")
    at.text_area(key="new_value").input("fresh-value")
    button(at, "Create").click().run()
    assert "Created development/fresh/key." in messages(at)
    assert "fresh/key" in set(at.dataframe[0].value["Name"])


def confirm_rotation(at):
    """Press the page's Rotate button, then the dialog's confirm button."""
    button(at, "Rotate now…").click().run()
    confirm = [b for b in at.button if b.label.startswith("Rotate ") and b.label.endswith("now")]
    assert confirm, [b.label for b in at.button]
    confirm[0].click().run()
    return at


def schedule(at):
    return next(d.value for d in at.dataframe if "Last rotated" in d.value.columns)


def test_rotate_now_shows_the_new_schedule(console):
    console.update_secret("db_url", "development", rotation_interval_days=30)
    at = login(console, "opal")
    at.switch_page("pages/rotation.py").run()
    assert schedule(at)["Last rotated"].isna().all()
    at.multiselect(key="r_pick").select("development/db_url").run()
    confirm_rotation(at)
    assert not at.exception
    assert "Rotated 1 of 1 secret(s)." in messages(at)
    assert schedule(at)["Last rotated"].notna().all()


def test_revert_says_so_and_history_shows_it(console):
    console.update_secret("db_url", "development", rotation_interval_days=30)
    console.rotate_secret(name="db_url", environment="development")
    at = login(console, "opal")
    at.switch_page("pages/rotation.py").run()
    at.multiselect(key="r_pick").select("development/db_url").run()
    button(at, "Revert to previous").click().run()
    assert "Reverted development/db_url: the previous value is current again (version 3)." in messages(at)
    assert "revert" in set(at.dataframe[-1].value["Operation"])


def test_lock_and_roles_show_in_the_users_table_at_once(console):
    at = login(console, "ann")
    at.switch_page("pages/users.py").run()
    at.selectbox(key="u_pick").select("rita").run()
    button(at, "Lock").click().run()
    assert "rita is locked and logged out." in messages(at)
    table = at.dataframe[0].value.set_index("Name")
    assert table.loc["rita", "Locked"] == "until unlocked"
    at.multiselect(key="u_roles_rita").select("auditor")
    button(at, "Save roles (ends the user's sessions)").click().run()
    assert "Roles of rita: auditor." in messages(at)
    assert at.dataframe[0].value.set_index("Name").loc["rita", "Roles"] == "auditor"
