"""The password policy (issue 17): NIST SP 800-63B rules, everywhere a password is set."""

from __future__ import annotations

import pytest

from tests.test_cli import err, vc, vpath  # noqa: F401  (vpath: fixture)
from vault_core import AccessDenied, ValidationError, passwords

WEAK = {
    "password": "at least 12",
    "12345678": "at least 12",
    " " * 8: "at least 12",
    "aaaaaaaa": "at least 12",
    " " * 12: "only spaces",
    "aaaaaaaaaaaa": "repeated or sequential",
    "abcabcabcabc": "repeated or sequential",
    "123456789012": "repeated or sequential",
    "qwertyuiopas": "repeated or sequential",
    "passwordpassword": "repeated or sequential",
    "iloveyou2024!": "common or breached",
    "Password12345": "common or breached",
    "superman123456": "common or breached",
    "alice-rules-forever": "contains the user name",
}
STRONG = "plum kite saddle 77"


def test_the_bundled_list_is_large_and_lower_case():
    listed = passwords.common_passwords()
    assert len(listed) >= 100_000
    assert {"password", "iloveyou", "123456", "qwerty"} <= listed
    assert all(p == p.lower() for p in list(listed)[:1000])


@pytest.mark.parametrize("pw,why", WEAK.items(), ids=range(len(WEAK)))
def test_weak_passwords_are_refused_by_name_of_the_rule_never_echoed(pw, why):
    with pytest.raises(ValidationError, match=why) as exc:
        passwords.check_new_password(pw, user="alice")
    assert pw.strip() in ("", "password") or pw not in str(exc.value)  # "password" is in every message


def test_strong_passwords_pass_and_the_minimum_can_only_go_up(monkeypatch):
    for pw in (STRONG, "correct horse battery staple", "Tr0ub4dor&3-but-longer", "ünïcödé pässwörd"):
        assert passwords.check_new_password(pw, user="alice") == pw.encode()
    monkeypatch.setenv("VAULT_PASSWORD_MIN_LENGTH", "20")
    with pytest.raises(ValidationError, match="at least 20"):
        passwords.check_new_password(STRONG, user="alice")
    monkeypatch.setenv("VAULT_PASSWORD_MIN_LENGTH", "4")
    assert passwords.min_length() == 12


def test_longer_than_bcrypt_is_refused_not_cut():
    with pytest.raises(ValidationError, match="72 bytes"):
        passwords.check_new_password("long unique phrase " * 4, user="alice")


@pytest.fixture
def users(vault):
    vault.bcrypt_rounds = 4
    vault.add_user("alice", STRONG, ["operator"], must_change_password=False)
    return vault


def test_library_refuses_weak_passwords_and_changes_nothing(users):
    before = users.get_principal("alice")
    for pw, why in WEAK.items():
        with pytest.raises(ValidationError, match=why):
            users.add_user("alice2" if "alice" not in pw else "alice", pw)
        with pytest.raises(ValidationError, match=why):
            users.set_password("alice", pw)
    assert users.get_principal("alice") == before
    assert users.get_principal("alice2") is None
    users.verify_login("alice", STRONG)  # the old password still works


def test_a_new_password_must_differ_from_the_current_and_the_one_time_password(users):
    users.set_password("alice", "one time pass 4711")  # an admin reset: must change at next login
    token = users.verify_login("alice", "one time pass 4711")
    assert users.check_session(token).must_change_password
    with users.security_context("alice", roles=["operator"]):
        with pytest.raises(ValidationError, match="differ from the current"):
            users.set_password("alice", "one time pass 4711", current_password="one time pass 4711")
        users.set_password("alice", "fresh meadow lantern 3", current_password="one time pass 4711")
    with users.security_context("mallory", roles=[]):  # no oracle: a stranger offering alice's password
        with pytest.raises(AccessDenied):
            users.set_password("alice", "fresh meadow lantern 3")
    users.set_password("alice", "fresh meadow lantern 3")  # an admin's reset is not compared: no oracle either


def test_existing_hashes_of_old_short_passwords_keep_working(users):
    import bcrypt

    from vault_core.storage import repos

    with users.storage.transaction() as tx:  # a hash made before the policy, as an upgraded vault holds it
        repos.principals.update_principal(tx, "alice", password_hash=bcrypt.hashpw(b"short1", bcrypt.gensalt(4)).decode())
    assert users.check_session(users.verify_login("alice", "short1")) is not None


def test_cli_refuses_weak_passwords_with_the_rule(vpath):  # noqa: F811
    for pw, why in {**WEAK, "carol-is-here-77": "contains the user name"}.items():
        if "alice" in pw:
            continue
        result = vc(vpath, "users", "add", "carol", stdin=pw + "\n")
        assert result.returncode == 2 and why in err(result), (pw, err(result))
        assert pw.strip() in ("", "password") or pw not in err(result)
    assert vc(vpath, "users", "add", "carol", stdin=STRONG + "\n").returncode == 0
    for pw in ("password", "12345678", " " * 8, "aaaaaaaa", "carol-is-here-77"):
        result = vc(vpath, "users", "passwd", "carol", stdin=pw + "\n")
        assert result.returncode == 2 and ("at least 12" in err(result) or "user name" in err(result))


def test_denied_callers_learn_nothing_of_the_policy(users):
    with users.security_context("alice", roles=["operator"]):
        with pytest.raises(AccessDenied):
            users.add_user("eve", STRONG)
