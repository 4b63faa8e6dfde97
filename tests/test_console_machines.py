"""The Machines section of the Users page (issue 21): add a machine, its secret id shown once, rotate, revoke."""

from __future__ import annotations

from tests.console_fixtures import button, login, texts


def test_add_machine_shows_the_secret_id_once_and_it_logs_in(console):
    at = login(console, "ann")
    at.switch_page("pages/users.py").run()
    at.text_input(key="m_new_name").input("Web-App")
    at.text_input(key="m_new_cidrs").input("10.0.0.0/8")
    button(at, "Add machine").click().run()
    assert not at.exception
    secret_id = at.code[0].value
    (machine,) = console.machines.list_machines()
    assert machine["name"] == "web-app" and machine["bound_cidrs"] == "10.0.0.0/8"
    assert machine["role_id"] in texts(at)
    assert console.machines.login(machine["role_id"], secret_id, "10.1.2.3").token
    at.run()
    assert secret_id not in texts(at)  # never shown again
    at.selectbox(key="m_pick").select("web-app").run()
    button(at, "Rotate secret id").click().run()
    rotated = at.code[0].value
    assert rotated != secret_id and "older secret id" in texts(at)
    button(at, "Revoke tokens").click().run()
    assert "1 token(s) of web-app revoked." in [s.value for s in at.success]
    ops = [r["operation"] for r in console.get_audit_log(principal="ann", limit=50)]
    assert {"machine_create", "machine_secret_issue", "machine_secret_rotate", "machine_tokens_revoke"} <= set(ops)
