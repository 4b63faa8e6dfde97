"""The console's view of audit devices and audit order (issue 23), through AppTest."""

from __future__ import annotations

from tests.audit_receivers import Receiver
from tests.console_fixtures import button, login, texts


def test_health_shows_each_devices_lag_and_a_refusing_required_device(console):
    rx = Receiver()
    console.add_audit_device("siem", "socket", address=rx.address, required=True, max_lag_s=0)
    console.deliver_audit()
    rx.stop()
    console.get_secret("db_url", "development")  # a row the device cannot take
    console.deliver_audit()
    at = login(console, "ann")
    at.switch_page("pages/health.py").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "Rows behind" in d.value.columns)
    assert table.loc[0, "Device"] == "siem" and table.loc[0, "Rows behind"] >= 1
    assert table.loc[0, "Behind"].endswith(("second", "seconds")) and table.loc[0, "Last error"]
    assert any("required audit device siem" in e.value and "refuses operations" in e.value for e in at.error)
    rx.start()
    console.deliver_audit()
    at.run()
    table = next(d.value for d in at.dataframe if "Rows behind" in d.value.columns)
    assert table.loc[0, "Behind"] == "caught up" and not [e for e in at.error if "siem" in e.value]


def test_the_audit_view_goes_newest_or_oldest_first(console):
    for _ in range(105):
        console.get_secret("db_url", "development")
    at = login(console, "aud")
    at.switch_page("pages/audit.py").run()
    newest = at.dataframe[0].value
    assert list(newest["seq"]) == sorted(newest["seq"], reverse=True)
    at.radio(key="a_order").set_value("Oldest first").run()
    oldest = at.dataframe[0].value
    assert list(oldest["seq"]) == list(range(1, 101))
    button(at, "Later").click().run()
    assert at.dataframe[0].value["seq"].min() == 101
    assert "oldest first" in texts(at)
