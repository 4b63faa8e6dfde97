"""Console users: passwords, sessions, lockout (issue 11), on SQLite and PostgreSQL."""

from __future__ import annotations

import bcrypt
import pytest

from vault_core import AccessDenied, ValidationError, open_vault
from vault_core import lockout
from vault_core.errors import AccountLocked, LoginFailed

PW = "correct horse battery"


class Clock:
    def __init__(self, start: int = 1_900_000_000_000_000):
        self.now = start

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def users(vault):
    vault.bcrypt_rounds = 4
    vault.add_user("Alice", PW, ["operator"], must_change_password=False)
    return vault


def test_login_gives_a_session_that_names_user_and_roles(users):
    token = users.verify_login("ALICE", PW, "10.1.2.3", "Mozilla/5.0")
    session = users.check_session(token)
    assert session.user == "alice" and session.roles == ("operator",)
    assert not session.must_change_password
    rows = users.get_audit_log(operation="login")
    assert rows[0]["outcome"] == "allowed" and rows[0]["client_ip"] == "10.1.2.3"
    assert rows[0]["session_id"] == session.session_id and token not in str(rows)


def test_wrong_and_unknown_users_fail_alike_and_are_audited(users):
    with pytest.raises(LoginFailed) as real:
        users.verify_login("alice", "wrong password!", "10.0.0.1")
    with pytest.raises(LoginFailed) as unknown:
        users.verify_login("mallory", "wrong password!", "10.0.0.1")
    with pytest.raises(LoginFailed):
        users.verify_login("bad name with spaces!", "wrong password!")
    assert str(real.value) == str(unknown.value) == "wrong user name or password"
    reasons = [(r["principal"], r["outcome"], r["reason"]) for r in users.get_audit_log(operation="login")]
    assert ("alice", "denied", "wrong password") in reasons
    assert ("mallory", "denied", "unknown user") in reasons
    assert "wrong password!" not in users.export_audit("jsonl")


def test_unknown_user_costs_one_bcrypt_check_of_the_same_cost(users, monkeypatch):
    costs = []
    real_check = bcrypt.checkpw

    def spy(password, hashed):
        costs.append(hashed[:7])
        return real_check(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    for name in ("alice", "nobody"):
        with pytest.raises(LoginFailed):
            users.verify_login(name, "not the password")
    assert len(costs) == 2 and costs[0] == costs[1] == b"$2b$04$"


def test_long_password_gets_a_clear_message_without_echo(users):
    secret = "é" * 40  # 80 bytes
    with pytest.raises(ValidationError, match="72 bytes") as exc:
        users.verify_login("alice", secret)
    assert secret not in str(exc.value)
    with pytest.raises(ValidationError, match="72 bytes"):
        users.add_user("bob", "x" * 73)


def test_five_failures_lock_their_source_across_replicas_then_expire(any_vault, tmp_path):
    clock = Clock()
    any_vault.bcrypt_rounds = 4
    any_vault.clock = clock
    any_vault.add_user("alice", PW, must_change_password=False)
    url = None if any_vault.storage.backend == "sqlite" else any_vault.storage.url
    replica = open_vault(any_vault.vault_dir, database_url=url, strict=True, create=False)
    replica.clock = clock
    try:
        for i in range(5):
            target = any_vault if i % 2 else replica  # failures spread over two processes' vaults
            with pytest.raises(LoginFailed):
                target.verify_login("alice", f"wrong {i} password", "10.9.9.9")
            clock.now += 10_000_000  # past each progressive delay
        with pytest.raises(AccountLocked, match="try again after"):
            replica.verify_login("alice", PW, "10.9.9.9")  # the right password is refused while locked
        with pytest.raises(AccountLocked):
            any_vault.verify_login("alice", PW, "10.9.9.9")
        reasons = [r["reason"] for r in any_vault.get_audit_log(operation="login", outcome="denied", limit=3)]
        assert reasons[0].startswith("throttled: 5 failed logins from this address")
        assert replica.check_session(replica.verify_login("alice", PW, "10.7.7.7")) is not None  # elsewhere
        clock.now += lockout.SOURCE_LOCK_US + 1
        assert replica.check_session(replica.verify_login("alice", PW, "10.9.9.9")) is not None
    finally:
        replica.storage.dispose()


def test_unknown_names_lock_too(users):
    users.clock = clock = Clock()
    for _ in range(5):
        with pytest.raises(LoginFailed):
            users.verify_login("ghost", "still wrong password", "10.0.0.5")
        clock.now += 10_000_000
    with pytest.raises(AccountLocked):
        users.verify_login("ghost", "still wrong password", "10.0.0.5")


@pytest.mark.parametrize("how", ["logout", "password", "roles", "lock", "end_sessions"])
def test_old_sessions_end(users, how):
    token = users.verify_login("alice", PW)
    assert users.check_session(token) is not None
    if how == "logout":
        assert users.logout(token)
        assert users.get_audit_log(operation="logout")[0]["principal"] == "alice"
    elif how == "password":
        users.set_password("alice", "another password 1")
    elif how == "roles":
        users.set_roles("alice", [])
    elif how == "lock":
        users.lock_user("alice")
        with pytest.raises(AccountLocked):
            users.verify_login("alice", PW)
        users.unlock_user("alice")
    else:
        users.end_sessions("alice")
    assert users.check_session(token) is None


def test_admin_reset_forces_change_and_own_change_needs_current(users):
    users.set_password("alice", "temporary pass 1")
    token = users.verify_login("alice", "temporary pass 1")
    session = users.check_session(token)
    assert session.must_change_password
    with users.security_context("alice", roles=session.roles):
        with pytest.raises(AccessDenied):
            users.set_password("alice", "my own password", current_password="not it at all")
        users.set_password("alice", "my own password", current_password="temporary pass 1")
    assert users.check_session(token) is None
    assert not users.check_session(users.verify_login("alice", "my own password")).must_change_password


def test_only_admins_manage_users(users):
    with users.security_context("alice", roles=["operator"]):
        with pytest.raises(AccessDenied):
            users.add_user("eve", "plum kite saddle 77")
        with pytest.raises(AccessDenied):
            users.set_password("bob", "plum kite saddle 77")
        with pytest.raises(AccessDenied):
            users.lock_user("owner")
    with pytest.raises(ValidationError, match="at least 12"):
        users.add_user("eve", "short")


def test_check_session_rejects_junk_and_forged_tokens(users):
    for junk in (None, "", "x" * 500, 42, "a" * 43):
        assert users.check_session(junk) is None
    assert len(users.console_cookie_secret()) == 64
