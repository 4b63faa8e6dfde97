"""Values of every shape, opening a secret by its address, and actions shown by level (issue 18; AppTest)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.console_fixtures import CANARY, button, login, texts


def certificate_pem(days: int = 90) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.test")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def new_secret(at, name: str, stype: str = "generic", env: str = "development", shape: str = "Text"):
    at.selectbox(key="new_env").select(env)
    at.selectbox(key="new_type").select(stype)
    at.radio(key="new_shape").set_value(shape).run()  # picked outside the form: the form is redrawn for it
    at.text_input(key="new_name").input(name)  # typed in the form: sent with the next press of its buttons
    return at


def revealed(at) -> list[str]:
    button(at, "Reveal value").click().run()
    return [c.value for c in at.code][1:]  # the first code block is the secret's link


def test_a_pem_certificate_keeps_every_byte_and_shows_its_expiry_before_saving(console):
    pem = certificate_pem() + "  \n"  # trailing spaces and newline too
    at = new_secret(login(console, "ann"), "tls/cert", "certificate")
    at.text_area(key="new_value").input(pem)
    button(at, "Check").click().run()  # in the form: typed text reaches the page when a button submits it
    assert console.get_metadata("tls/cert", "development") is None  # checked, not saved
    (note,) = [i.value for i in at.info if i.value.startswith("Certificate valid until")]
    assert "(89 days from now)" in note or "(90 days from now)" in note
    button(at, "Create").click().run()
    assert "Created development/tls/cert." in [s.value for s in at.success]
    assert console.get_secret("tls/cert", "development") == pem
    meta = console.get_metadata("tls/cert", "development")
    assert meta.expires_at is not None and meta.expires_at > datetime.now(timezone.utc) + timedelta(days=88)
    assert revealed(at) == [pem]


def test_a_bad_certificate_is_refused_without_echoing_it(console):
    at = new_secret(login(console, "ann"), "tls/bad", "certificate")
    at.text_area(key="new_value").input("-----BEGIN CERTIFICATE-----\nnot-base64-at-all\n")
    button(at, "Create").click().run()
    assert "That is not a readable PEM certificate." in [e.value for e in at.error]
    assert "not-base64-at-all" not in "".join(e.value for e in at.error)
    assert console.get_metadata("tls/bad", "development") is None


def test_json_is_stored_as_one_secret_and_read_back_as_the_same_structure(console):
    at = new_secret(login(console, "ann"), "app/config", shape="JSON")
    at.text_area(key="new_json").input('{"user": "app",\n "port": 5432, "hosts": ["a", "b"]}')
    button(at, "Create").click().run()
    stored = console.get_secret("app/config", "development")
    assert json.loads(stored) == {"user": "app", "port": 5432, "hosts": ["a", "b"]}
    button(at, "Reveal value").click().run()
    assert at.json[0].value and json.loads(at.json[0].value) == {"user": "app", "port": 5432, "hosts": ["a", "b"]}


def test_bad_json_says_where(console):
    at = new_secret(login(console, "ann"), "app/broken", shape="JSON")
    at.text_area(key="new_json").input('{"user": }')
    button(at, "Check").click().run()
    assert "That JSON is not valid (line 1, column 10)." in [e.value for e in at.error]


def test_generate_fills_in_a_value_from_the_type_generator(console):
    at = new_secret(login(console, "ann"), "svc/password", "password")
    button(at, "Generate (password)").click().run()
    generated = at.text_area(key="new_value").value
    assert len(generated) >= 16
    button(at, "Create").click().run()
    assert console.get_secret("svc/password", "development") == generated
    assert at.text_area(key="new_value").value == ""  # the form starts empty again


def at_address(console, user: str, env: str, name: str):
    """The app opened at ?env=...&name=... by a logged-in ``user``."""
    from streamlit.testing.v1 import AppTest

    from tests.console_fixtures import APP, PW

    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["vault_session_token"] = console.verify_login(user, PW, "10.9.8.7", "apptest")
    at.query_params["env"] = env
    at.query_params["name"] = name
    at.run()
    return at


def test_a_secret_opens_from_its_address(console):
    at = at_address(console, "ann", "development", "db_url")
    assert not at.exception
    assert "development / db_url" in [s.value for s in at.subheader]
    assert at.code[0].value.endswith("?env=development&name=db_url")
    assert revealed(at) == [CANARY]


def test_an_address_of_nothing_says_so(console):
    at = at_address(console, "rita", "production", "prod_key")
    (error,) = at.error
    assert error.value == "Not done: rita holds no level on production/prod_key."
    assert "prod-value-1" not in texts(at)


def test_a_reader_sees_edit_and_delete_disabled_with_the_reason(console):
    at = login(console, "rita")
    at.selectbox(key="secret_pick").select("development/db_url").run()
    assert not button(at, "Reveal value").disabled
    assert button(at, "Save").disabled and button(at, "Save").help == (
        "You do not hold the write level on development/db_url.")
    assert button(at, "Delete…").disabled
    assert "You hold read on this secret; actions needing admin, write are disabled." in texts(at)
