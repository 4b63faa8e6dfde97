"""The HTTP API (issue 21) against the real ``vault-console serve``, spoken to by hvac (HashiCorp's Python client).

hvac is a client no one here wrote: where it accepts an answer, the shapes and status codes are Vault's.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import hvac
import hvac.exceptions
import pytest

from tests.browser import console_server
from vault_core import open_vault

CANARY = "canary-api-5d1e-value"
OLD = "canary-api-old-7b2c"
PW = "api test password 1"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    vault.add_user("ann", PW, ["admin"], must_change_password=False)  # a console admin, logged in by a browser
    machines = vault.machines
    creds = {}
    for name, env in (("app-dev", "development"), ("app-prod", "production"), ("app-guessed", "staging")):
        role_id = machines.create_machine(name, token_ttl=600, token_max_ttl=1200)
        creds[name] = (role_id, machines.new_secret_id(name))
        vault.grant(name, ["read", "write", "admin"], environment=env, subject_kind="user")
    vault.store_secret("prod_key", "prod-value-api", environment="production")
    vault.store_secret("shared/old", OLD, environment="development")
    vault.update_secret("shared/old", "development", value=CANARY)
    with console_server(path) as server:
        yield vault, server, creds
    vault.storage.dispose()


def client(server, creds, name="app-dev") -> hvac.Client:
    c = hvac.Client(url=server.url)
    c.auth.approle.login(role_id=creds[name][0], secret_id=creds[name][1])
    return c


def test_approle_login_gives_a_token_hvac_accepts(served):
    _, server, creds = served
    c = client(server, creds)
    assert c.is_authenticated()
    me = c.auth.token.lookup_self()["data"]
    assert me["meta"] == {"role_name": "app-dev"} and 0 < me["ttl"] <= 600 and me["renewable"] is True
    with pytest.raises(hvac.exceptions.InvalidRequest):
        hvac.Client(url=server.url).auth.approle.login(role_id=creds["app-dev"][0], secret_id="x" * 43)


def test_kv_v2_write_read_versions_list_delete_undelete_destroy(served):
    _, server, creds = served
    kv = client(server, creds).secrets.kv.v2
    m = "development"
    written = kv.create_or_update_secret("svc/db", {"user": "app", "password": "pw-1"}, cas=0, mount_point=m)
    assert written["data"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidRequest) as conflict:  # cas=0 on an existing secret
        kv.create_or_update_secret("svc/db", {"user": "app"}, cas=0, mount_point=m)
    assert "check-and-set" in str(conflict.value)
    assert kv.create_or_update_secret("svc/db", {"user": "app", "password": "pw-2"}, cas=1,
                                      mount_point=m)["data"]["version"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest):  # a stale cas
        kv.create_or_update_secret("svc/db", {"password": "pw-x"}, cas=1, mount_point=m)
    now = kv.read_secret_version("svc/db", mount_point=m, raise_on_deleted_version=True)["data"]
    assert now["data"] == {"user": "app", "password": "pw-2"} and now["metadata"]["version"] == 2
    old = kv.read_secret_version("svc/db", version=1, mount_point=m, raise_on_deleted_version=True)["data"]
    assert old["data"]["password"] == "pw-1" and old["metadata"]["version"] == 1
    meta = kv.read_secret_metadata("svc/db", mount_point=m)["data"]
    assert meta["current_version"] == 2 and set(meta["versions"]) == {"1", "2"}
    assert kv.list_secrets("", mount_point=m)["data"]["keys"] == ["shared/", "svc/"]
    assert kv.list_secrets("svc", mount_point=m)["data"]["keys"] == ["db"]
    kv.delete_latest_version_of_secret("svc/db", mount_point=m)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("svc/db", mount_point=m, raise_on_deleted_version=True)
    gone = kv.read_secret_version("svc/db", mount_point=m, raise_on_deleted_version=False)
    assert gone["data"]["data"] is None and gone["data"]["metadata"]["deletion_time"]
    kv.undelete_secret_versions("svc/db", versions=[2], mount_point=m)
    assert kv.read_secret("svc/db", mount_point=m, raise_on_deleted_version=True)["data"]["data"]["password"] == "pw-2"
    with pytest.raises(hvac.exceptions.InvalidRequest):  # only some versions: refused, nothing destroyed
        kv.destroy_secret_versions("svc/db", versions=[1], mount_point=m)
    kv.destroy_secret_versions("svc/db", versions=[1, 2], mount_point=m)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("svc/db", mount_point=m, raise_on_deleted_version=True)
    kv.create_or_update_secret("svc/tmp", {"value": "t"}, mount_point=m)
    kv.delete_metadata_and_all_versions("svc/tmp", mount_point=m)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata("svc/tmp", mount_point=m)


def test_plain_values_read_as_value_and_keep_their_type_and_tags(served):
    vault, server, creds = served
    kv = client(server, creds).secrets.kv.v2
    got = kv.read_secret_version("shared/old", mount_point="development", raise_on_deleted_version=True)["data"]
    assert got["data"] == {"value": CANARY} and got["metadata"]["version"] == 2
    assert kv.read_secret_version("shared/old", version=1, mount_point="development",
                                  raise_on_deleted_version=True)["data"]["data"] == {"value": OLD}
    kv.create_or_update_secret("shared/old", {"value": "plain-3"}, mount_point="development")
    assert vault.get_secret("shared/old", "development") == "plain-3"


def test_denied_is_403_and_missing_is_404(served):
    _, server, creds = served
    kv = client(server, creds).secrets.kv.v2
    with pytest.raises(hvac.exceptions.Forbidden):  # app-dev holds nothing in production
        kv.read_secret_version("prod_key", mount_point="production", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):  # ... not even for a name that does not exist
        kv.read_secret_version("nope", mount_point="production", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("nope", mount_point="development", raise_on_deleted_version=True)
    prod = client(server, creds, "app-prod").secrets.kv.v2
    assert prod.read_secret("prod_key", mount_point="production",
                            raise_on_deleted_version=True)["data"]["data"] == {"value": "prod-value-api"}
    with pytest.raises(hvac.exceptions.Forbidden):  # a production token cannot read development
        prod.read_secret("shared/old", mount_point="development", raise_on_deleted_version=True)


def test_renew_and_revoke_and_a_revoked_token_fails_at_the_next_call(served):
    _, server, creds = served
    c = client(server, creds)
    renewed = c.auth.token.renew_self(increment="300s")["auth"]
    assert renewed["renewable"] and 0 < renewed["lease_duration"] <= 300
    c.secrets.kv.v2.read_secret("shared/old", mount_point="development", raise_on_deleted_version=True)
    c.auth.token.revoke_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        c.secrets.kv.v2.read_secret("shared/old", mount_point="development", raise_on_deleted_version=True)
    assert not c.is_authenticated()


def test_the_console_cookie_is_no_credential_and_no_token_is_forbidden(served):
    _, server, creds = served
    from tests.console_http import Client

    browser = Client(server.url)
    assert browser.log_in("ann", PW)[0] == 303 and browser.jar  # a live admin session cookie
    for method in ("GET", "POST", "DELETE"):  # the API reads only X-Vault-Token, never the cookie
        status, _, text = browser.request(method, "/v1/development/data/shared/old",
                                          headers={"Origin": server.url})
        assert status == 403 and json.loads(text) == {"errors": ["permission denied"]}, (method, status)
    status, _, text = browser.request("GET", "/v1/development/data/shared/old")
    assert status == 403 and json.loads(text) == {"errors": ["permission denied"]}


def test_health_answers_like_vault(served):
    _, server, _ = served
    health = hvac.Client(url=server.url).sys.read_health_status(method="GET")
    assert health["initialized"] is True and health["sealed"] is False


def test_bad_input_gets_vault_errors_without_the_value_and_changes_nothing(served):
    vault, server, creds = served
    c = client(server, creds)
    before = vault.list_versions("shared/old", "development")
    secret = "canary-bad-input-9a7f"
    for body in (b"{not json " + secret.encode(), json.dumps({"data": secret}).encode(),
                 json.dumps({"data": {"value": secret}, "options": {"cas": secret}}).encode()):
        req = urllib.request.Request(f"{server.url}/v1/development/data/shared/old", data=body, method="POST",
                                     headers={"X-Vault-Token": c.token, "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        text = err.value.read().decode()
        assert err.value.code == 400 and json.loads(text)["errors"] and secret not in text
    assert vault.list_versions("shared/old", "development") == before


def test_a_10_mb_body_is_refused_without_being_read(served):
    _, server, creds = served
    c = client(server, creds)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall((f"POST /v1/development/data/big HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: {c.token}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {10 * 1024 * 1024}\r\n\r\n").encode()
                     + b'{"data": {"value": "' + b"x" * 65536)  # far less than announced: never sent in full
        reply = b""
        while b"}" not in reply.partition(b"\r\n\r\n")[2]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        reply = reply.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413") and '"errors"' in reply
    assert "x" * 64 not in reply


def test_logins_are_throttled_like_console_logins(served):
    vault, server, creds = served
    role_id = creds["app-guessed"][0]
    anon = hvac.Client(url=server.url)
    statuses = []
    for _ in range(3):
        try:
            anon.auth.approle.login(role_id=role_id, secret_id="w" * 43)
        except hvac.exceptions.InvalidRequest:
            statuses.append(400)
        except hvac.exceptions.RateLimitExceeded:
            statuses.append(429)
    assert statuses[0] == 400 and 429 in statuses  # after the 2nd failure a wait, so the 3rd is refused
    with pytest.raises(hvac.exceptions.RateLimitExceeded):  # the right secret id too, until the wait ends
        anon.auth.approle.login(role_id=role_id, secret_id=creds["app-guessed"][1])
    assert any("throttled" in r["details"] for r in vault.get_audit_log(limit=20)
               if r["operation"] == "approle_login")


def test_no_value_token_or_secret_id_in_server_output_or_audit(served):
    vault, server, creds = served
    c = client(server, creds)
    c.secrets.kv.v2.read_secret("shared/old", mount_point="development", raise_on_deleted_version=True)
    answers = []  # every answer that is not a value read: none may carry a value or a credential
    for method, path in (("GET", "/v1/auth/token/lookup-self"), ("GET", "/v1/development/metadata/shared/old"),
                         ("GET", "/v1/development/metadata/?list=true"), ("GET", "/v1/development/versions"),
                         ("GET", "/v1/production/data/prod_key"), ("GET", "/v1/sys/health"),
                         ("POST", "/v1/development/delete/shared/old")):
        req = urllib.request.Request(server.url + path, method=method, headers={"X-Vault-Token": c.token},
                                     data=b'{"versions": [1]}' if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                answers.append(resp.read().decode())
        except urllib.error.HTTPError as exc:
            answers.append(exc.read().decode())
    out = server.output()
    rows = json.dumps(vault.get_audit_log(limit=500), default=str)
    for leak in (CANARY, OLD, "prod-value-api", c.token, creds["app-dev"][1], creds["app-prod"][1], "pw-1", "pw-2"):
        assert leak not in out and leak not in rows and not any(leak in a for a in answers), leak
    assert "approle_login" in rows and "app-dev" in rows
