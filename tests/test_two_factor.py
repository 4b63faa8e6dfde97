"""TOTP two-factor (issue 17): enrolment, codes at login, single use, recovery codes, lockout, policy, rekey.

On SQLite and PostgreSQL. Codes are made with pyotp from the secret the enrolment showed, at the vault's
own (test) clock, so nothing here depends on the wall clock or on timing.
"""

from __future__ import annotations

import json
import threading

import pyotp
import pytest
from sqlalchemy import select

from vault_core import AccessDenied, ValidationError, lockout, open_vault
from vault_core.errors import AccountLocked, Conflict, LoginExpired, LoginFailed, SecondFactorRequired
from vault_core.storage.schema import recovery_codes, two_factor
from tests.test_cli import err, out, vc, vpath  # noqa: F401  (vpath: fixture)

PW = "plum kite saddle 77"
PW2 = "amber wharf lantern 12"
PW3 = "velvet quarry moss 40"
T0 = 1_900_000_000_000_000  # µs


class Clock:
    def __init__(self, start: int = T0):
        self.now = start

    def __call__(self) -> int:
        return self.now


def code_at(secret: str, clock: Clock, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now / 1e6 + 30 * steps)


@pytest.fixture
def tf(any_vault):
    clock = Clock()
    any_vault.clock = clock
    any_vault.bcrypt_rounds = 4
    any_vault.add_user("alice", PW, ["operator"], must_change_password=False)
    any_vault.add_user("root", PW2, ["admin"], must_change_password=False)
    any_vault.test_clock = clock
    return any_vault


def enrol(v, user: str = "alice", roles=("operator",)) -> tuple[str, list[str]]:
    with v.security_context(user, roles=list(roles)):
        shown = v.enrol_two_factor(user)
        codes = v.confirm_two_factor(user, code_at(shown["secret"], v.test_clock))
    v.test_clock.now += 30_000_000  # the confirming code's step is spent: the next login uses a newer one
    return shown["secret"], codes


def login(v, user: str, password: str, code: str, ip: str = "10.0.0.1") -> str:
    with pytest.raises(SecondFactorRequired) as asked:
        v.verify_login(user, password, ip)
    return v.complete_login(user, asked.value.ticket, code, ip)


def test_enrolment_shows_secret_uri_and_qr_once_then_confirms_with_a_first_code(tf):
    with tf.security_context("alice", roles=["operator"]):
        shown = tf.enrol_two_factor("alice")
        assert shown["uri"].startswith("otpauth://totp/vault-core:alice?") and shown["secret"] in shown["uri"]
        assert shown["qr_svg"].lstrip().startswith("<svg")
        assert tf.two_factor_status("alice")[0] == {"user": "alice", "enrolled": False, "pending": True,
                                                         "required": False, "recovery_codes_left": 0}
        before = tf.verify_login("alice", PW)
        assert tf.check_session(before) is not None  # pending: the password alone still logs in
        right = code_at(shown["secret"], tf.test_clock)
        with pytest.raises(ValidationError, match="not the current one"):
            tf.confirm_two_factor("alice", f"{(int(right) + 1) % 1_000_000:06d}")
        codes = tf.confirm_two_factor("alice", code_at(shown["secret"], tf.test_clock))
        assert len(codes) == 10 and len(set(codes)) == 10
        assert tf.check_session(before) is None  # a session made with the password alone ends
        assert tf.two_factor_status("alice")[0]["recovery_codes_left"] == 10
        with pytest.raises(Conflict):
            tf.enrol_two_factor("alice")
    with tf.storage.transaction(write=False) as tx:  # stored: ciphertext and hashes only
        row = tx.one(select(two_factor))
        hashes = [r["code_hash"] for r in tx.all(select(recovery_codes))]
    assert shown["secret"].encode() not in bytes(row["secret"]) and row["confirmed_at"] is not None
    assert not set(codes) & set(hashes) and all(len(h) == 64 for h in hashes)


def test_only_the_user_enrols_themself(tf):
    with tf.security_context("root", roles=["admin"]):
        with pytest.raises(AccessDenied):
            tf.enrol_two_factor("alice")


def test_login_asks_for_the_code_and_a_replayed_code_is_refused(tf):
    secret, _ = enrol(tf)
    with pytest.raises(SecondFactorRequired) as asked:
        tf.verify_login("alice", PW, "10.0.0.1")
    assert asked.value.ticket not in str(asked.value) + repr(asked.value)
    code = code_at(secret, tf.test_clock)
    token = tf.complete_login("alice", asked.value.ticket, code, "10.0.0.1")
    assert tf.check_session(token).user == "alice"
    with pytest.raises(LoginFailed, match="already used"):  # the same code again, in its window
        login(tf, "alice", PW, code)
    tf.test_clock.now += 30_000_000
    assert tf.check_session(login(tf, "alice", PW, code_at(secret, tf.test_clock)))
    reasons = [r["reason"] for r in tf.get_audit_log(operation="login", outcome="allowed", limit=5)]
    assert reasons[0] == "password and totp"
    # the one-call form: password and code together
    tf.test_clock.now += 30_000_000
    assert tf.check_session(tf.verify_login("alice", PW, code=code_at(secret, tf.test_clock)))


def test_two_racing_uses_of_one_code_give_one_session(tf):
    secret, _ = enrol(tf)
    code, results = code_at(secret, tf.test_clock), []
    tickets = []
    for _ in range(4):
        with pytest.raises(SecondFactorRequired) as asked:
            tf.verify_login("alice", PW, "10.0.0.1")
        tickets.append(asked.value.ticket)
    gate = threading.Barrier(4)

    def use(ticket):
        gate.wait()
        try:
            results.append(tf.complete_login("alice", ticket, code, f"10.0.1.{len(ticket) % 250}"))
        except LoginFailed as exc:
            results.append(exc)

    threads = [threading.Thread(target=use, args=(t,)) for t in tickets]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(isinstance(r, str) for r in results) == 1


def test_a_recovery_code_works_once(tf):
    _, codes = enrol(tf)
    assert tf.check_session(login(tf, "alice", PW, codes[0].upper()))  # case and dashes do not matter
    with pytest.raises(LoginFailed):
        login(tf, "alice", PW, codes[0])
    assert tf.two_factor_status("alice")[0]["recovery_codes_left"] == 9
    assert tf.get_audit_log(operation="login", outcome="allowed", limit=1)[0]["reason"] == \
        "password and recovery code"


def test_wrong_codes_count_as_failures_and_lock_the_source(tf):
    secret, _ = enrol(tf)
    right = code_at(secret, tf.test_clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with pytest.raises(SecondFactorRequired) as asked:
        tf.verify_login("alice", PW, "10.0.0.9")
    for i in range(lockout.SOURCE_LIMIT):
        with pytest.raises(LoginFailed) as exc:
            tf.complete_login("alice", asked.value.ticket, wrong, "10.0.0.9")
        assert not isinstance(exc.value, AccountLocked)
        tf.test_clock.now += lockout.MAX_DELAY_US  # past each progressive delay
    with pytest.raises(AccountLocked, match="try again after"):  # refused unchecked, the right code too
        tf.complete_login("alice", asked.value.ticket, right, "10.0.0.9")
    with pytest.raises(AccountLocked):  # and a right password does not reset the count of code guesses
        tf.verify_login("alice", PW, "10.0.0.9")


def test_a_right_password_does_not_forget_the_failed_codes(tf):
    secret, _ = enrol(tf)
    right = code_at(secret, tf.test_clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(lockout.SOURCE_LIMIT):  # password right, code wrong, again and again
        with pytest.raises(LoginFailed):
            login(tf, "alice", PW, wrong, ip="10.0.0.7")
        tf.test_clock.now += lockout.MAX_DELAY_US
    with pytest.raises(AccountLocked):
        tf.verify_login("alice", PW, "10.0.0.7")


def test_a_ticket_is_bound_to_its_user_expires_and_ends_with_a_password_change(tf):
    secret, _ = enrol(tf)
    with pytest.raises(SecondFactorRequired) as asked:
        tf.verify_login("alice", PW)
    ticket = asked.value.ticket
    with pytest.raises(LoginExpired, match="expired"):
        tf.complete_login("root", ticket, code_at(secret, tf.test_clock))
    forged = ticket[:-1] + ("0" if ticket[-1] != "0" else "1")
    with pytest.raises(LoginExpired, match="expired"):
        tf.complete_login("alice", forged, code_at(secret, tf.test_clock))
    tf.test_clock.now += 6 * 60 * 1_000_000
    with pytest.raises(LoginExpired, match="expired"):
        tf.complete_login("alice", ticket, code_at(secret, tf.test_clock))
    with pytest.raises(SecondFactorRequired) as asked:
        tf.verify_login("alice", PW)
    tf.lock_user("alice")
    tf.unlock_user("alice")
    with pytest.raises(LoginExpired, match="expired"):
        tf.complete_login("alice", asked.value.ticket, code_at(secret, tf.test_clock))


def test_admin_reset_is_audited_and_the_user_logs_in_with_the_password_again(tf):
    enrol(tf)
    with tf.security_context("alice", roles=["operator"]):
        with pytest.raises(AccessDenied):
            tf.reset_two_factor("root")
    tf.reset_two_factor("alice")
    row = tf.get_audit_log(operation="two_factor_reset", limit=1)[0]
    assert row["outcome"] == "allowed" and row["secret_name"] == "alice"
    assert tf.two_factor_status("alice")[0]["enrolled"] is False
    assert tf.check_session(tf.verify_login("alice", PW)) is not None


def test_own_disable_needs_a_current_code(tf):
    secret, _ = enrol(tf)
    with tf.security_context("alice", roles=["operator"]):
        with pytest.raises(AccessDenied, match="wrong"):
            tf.disable_two_factor("alice", "12345")
        tf.disable_two_factor("alice", code_at(secret, tf.test_clock))
    assert tf.check_session(tf.verify_login("alice", PW)) is not None


def test_policy_admin_requires_it_once_an_admin_enrolled_and_roles_can_require_it(tf):
    root_session = tf.check_session(tf.verify_login("root", PW2))
    assert not root_session.must_enrol_two_factor  # no admin has enrolled yet
    tf.add_user("boss", PW3, ["admin"], must_change_password=False)
    enrol(tf, "root", ("admin",))
    boss = tf.check_session(tf.verify_login("boss", PW3))
    assert boss.must_enrol_two_factor  # a session for the Account page only
    assert tf.two_factor_policy() == {"admin": True}
    alice = tf.verify_login("alice", PW)
    assert not tf.check_session(alice).must_enrol_two_factor
    tf.require_two_factor("operator")
    assert tf.check_session(alice).must_enrol_two_factor
    assert tf.get_audit_log(operation="two_factor_policy", limit=1)[0]["reason"] == \
        "role operator: two-factor required"
    tf.require_two_factor("admin", False)
    assert not tf.check_session(tf.verify_login("boss", PW3)).must_enrol_two_factor
    with tf.security_context("alice", roles=["operator"]):
        with pytest.raises(AccessDenied):
            tf.require_two_factor("operator", False)


def test_after_key_rotation_and_master_key_change_and_restart_an_enrolled_user_logs_in(tf):
    secret, _ = enrol(tf)
    tf.rotate_key_term()
    job = tf.reencrypt()
    with tf.storage.transaction(write=False) as tx:
        assert tx.one(select(two_factor))["key_term"] == job["target_term"]  # re-sealed under the new term
    assert 1 in job["retired"]  # nothing uses term 1 any more
    tf.change_master_key()
    url = tf.storage.url if tf.storage.backend == "postgresql" else None
    again = open_vault(tf.vault_dir, database_url=url, principal="owner")
    again.clock = tf.test_clock
    try:
        with pytest.raises(SecondFactorRequired) as asked:
            again.verify_login("alice", PW)
        assert again.check_session(again.complete_login("alice", asked.value.ticket, code_at(secret, tf.test_clock)))
    finally:
        again.storage.dispose()


def test_audit_rows_never_hold_the_secret_or_codes(tf):
    secret, codes = enrol(tf)
    login(tf, "alice", PW, codes[1])
    text = repr(tf.get_audit_log(limit=200))
    assert secret not in text and not any(c in text for c in codes)


def test_cli_lists_status_resets_and_requires(vpath):  # noqa: F811
    assert vc(vpath, "users", "add", "carol", "operator", stdin=PW + "\n").returncode == 0
    v = open_vault(vpath, principal="ops")
    try:
        with v.security_context("carol", roles=["operator"]):
            shown = v.enrol_two_factor("carol")
            v.confirm_two_factor("carol", pyotp.TOTP(shown["secret"]).now())
        listed = {u["name"]: u for u in json.loads(out(vc(vpath, "--json", "users", "list")))}
        assert listed["carol"]["two_factor"] == "on (10 recovery codes left)"
        required = vc(vpath, "--json", "users", "2fa-require", "--role", "auditor")
        assert required.returncode == 0 and json.loads(out(required)) == {"auditor": True, "admin": False}
        assert vc(vpath, "users", "2fa-require").returncode == 2  # --role is needed
        assert vc(vpath, "--principal", "carol", "users", "2fa-reset", "ops").returncode == 3
        reset = vc(vpath, "users", "2fa-reset", "carol")
        assert reset.returncode == 0, err(reset)
        listed = {u["name"]: u for u in json.loads(out(vc(vpath, "--json", "users", "list")))}
        assert listed["carol"]["two_factor"] == "off"
        assert v.get_audit_log(operation="two_factor_reset", limit=1)[0]["secret_name"] == "carol"
        text = out(vc(vpath, "audit", "tail", "-n", "50")) + repr(v.get_audit_log(limit=100))
        assert shown["secret"] not in text
    finally:
        v.storage.dispose()
