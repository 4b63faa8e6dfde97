"""The Secrets page under each role: what is shown, what is refused (AppTest)."""

from __future__ import annotations

from tests.console_fixtures import CANARY, button, login, texts

XSS = "<img src=x onerror=alert(1)>"


def pick(at, label: str):
    at.selectbox(key="secret_pick").select(label).run()
    assert not at.exception
    return at


def reveal(at):
    button(at, "Reveal value").click().run()
    return at


def test_admin_sees_all_and_reveal_lasts_one_run(console):
    at = login(console, "ann")
    shown = texts(at)
    assert "db_url" in shown and "prod_key" in shown and CANARY not in shown
    pick(at, "development/db_url")
    assert CANARY not in texts(at) and "Value: ••••••••" in texts(at)
    reveal(at)
    assert [c.value for c in at.code][1:] == [CANARY]  # the first is the secret's link
    assert console.get_audit_log(operation="reveal")[0]["principal"] == "ann"
    at.run()  # any rerun forgets the value
    assert CANARY not in texts(at)
    assert all(CANARY not in repr(at.session_state[k]) for k in at.session_state)


def test_user_text_is_shown_as_text(console):
    at = pick(login(console, "ann"), "development/db_url")
    assert XSS in [t.value for t in at.text]  # st.text: never HTML
    assert all(XSS not in m.value for m in at.markdown)


def test_reader_sees_only_granted_environment(console):
    at = login(console, "rita")
    assert "db_url" in texts(at) and "prod_key" not in texts(at)
    reveal(pick(at, "development/db_url"))
    assert [c.value for c in at.code][1:] == [CANARY]  # the first is the secret's link
    assert not [t for t in at.toggle if t.label == "Show deleted secrets"]


def test_writer_only_cannot_reveal_but_can_write(console):
    at = pick(login(console, "walt"), "development/db_url")
    shown = button(at, "Reveal value")
    assert shown.disabled and shown.help == "You do not hold the read level on development/db_url."
    assert "You hold write on this secret; actions needing admin, read are disabled." in texts(at)
    assert CANARY not in texts(at)
    at.text_input(key="new_name").input("walt_key")
    at.selectbox(key="new_env").select("development")
    at.text_area(key="new_value").input("walt-secret-value")
    button(at, "Create").click().run()
    assert "Created development/walt_key." in [s.value for s in at.success]
    assert console.get_secret("walt_key", "development") == "walt-secret-value"


def test_no_role_sees_nothing_and_cannot_create(console):
    at = login(console, "nora")
    assert "db_url" not in texts(at) and "prod_key" not in texts(at)
    at.text_input(key="new_name").input("nora_key")
    button(at, "Check").click().run()
    reason = ("You do not hold the write level on development/nora_key, so you cannot create it "
              "(change the name and press Check).")
    assert reason in [w.value for w in at.warning]
    assert button(at, "Create").disabled
    assert console.get_secret("nora_key", "development") is None


def test_auditor_reads_metadata_only(console):
    at = pick(login(console, "aud"), "development/db_url")
    assert "Read-only: auditors see metadata, never values." in texts(at)
    assert "Reveal value" not in [b.label for b in at.button]
    assert not [e for e in at.text_input if e.key == "new_name"]
    assert CANARY not in texts(at)


def test_malicious_name_is_refused_without_echoing_the_value(console):
    at = login(console, "ann")
    at.text_input(key="new_name").input(XSS)
    at.text_area(key="new_value").input("value-that-must-not-echo")
    button(at, "Create").click().run()
    (error,) = at.error
    assert "Secret name may hold only letters" in error.value and "value-that-must-not-echo" not in error.value


def test_edit_creates_a_version_and_rollback_restores_the_value(console):
    at = pick(login(console, "ann"), "development/db_url")
    [t for t in at.text_area if t.label.startswith("New value")][0].input("second-value")
    button(at, "Save").click().run()
    assert "Saved development/db_url: version 2." in [s.value for s in at.success]
    at.selectbox(key=[s.key for s in at.selectbox if s.label == "Roll back to"][0]).select(1)
    button(at, "Roll back to version 1").click().run()
    assert console.get_secret("db_url", "development") == CANARY
    assert console.get_metadata("db_url", "development").current_version == 3


def test_delete_needs_confirmation_then_admin_restores(console):
    at = pick(login(console, "ann"), "development/db_url")
    button(at, "Delete…").click().run()
    assert console.get_secret("db_url", "development") == CANARY  # nothing yet: a dialog asks
    button(at, "Delete").click().run()
    assert console.get_secret("db_url", "development") is None
    at.toggle(key="f_deleted").set_value(True).run()
    pick(at, "development/db_url")
    button(at, "Restore").click().run()
    assert console.get_secret("db_url", "development") == CANARY


def test_operator_cannot_delete(console):
    at = pick(login(console, "opal"), "development/db_url")
    delete = button(at, "Delete…")
    assert delete.disabled and delete.help == "You do not hold the admin level on development/db_url."
    assert not button(at, "Reveal value").disabled and not button(at, "Save").disabled
    assert console.get_secret("db_url", "development") == CANARY


def test_filters_and_server_paging(console):
    for i in range(120):
        console.store_secret(f"bulk/item_{i:03d}", "v", environment="staging", tags=["bulk"] if i % 2 else [])
    at = login(console, "ann")
    at.selectbox(key="f_env").select("staging").run()
    assert at.dataframe[0].value.shape[0] == 50
    button(at, "Next page").click().run()
    button(at, "Next page").click().run()
    last = at.dataframe[0].value
    assert last.shape[0] == 20 and last["Name"].iloc[-1] == "bulk/item_119"
    assert button(at, "Next page").disabled
    at.text_input(key="f_tag").input("bulk").run()
    assert at.dataframe[0].value.shape[0] == 50 and "Page 1: 50 secret(s)" in texts(at)
    at.text_input(key="f_search").input("item_11").run()
    assert sorted(at.dataframe[0].value["Name"]) == [f"bulk/item_11{i}" for i in (1, 3, 5, 7, 9)]


def test_purge_needs_the_typed_name(console):
    console.delete_secret("db_url", "development")
    at = login(console, "ann")
    at.toggle(key="f_deleted").set_value(True).run()
    pick(at, "development/db_url")
    button(at, "Purge…").click().run()
    assert "Purge" not in [b.label for b in at.button]
    at.text_input(key="purge_name").input("db_url").run()
    button(at, "Purge").click().run()
    assert console.list_secrets(only_deleted=True) == []
    assert console.get_audit_log(operation="purge")[0]["principal"] == "ann"
