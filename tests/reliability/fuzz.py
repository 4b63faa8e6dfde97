"""Hostile input against every public vault function (design statement 16).

Each example picks one function, makes one or more of its arguments hostile (the others valid) and
calls it. Only documented exceptions (VaultError subclasses) may come out, a failed call changes
nothing (secrets, versions, rules), an error message never echoes a secret value nor carries raw
control characters (log injection), and a read that succeeds changes nothing either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault_core import StorageError, VaultError

from .common import ENVS, snapshot
from .hostile import hostile_any, hostile_int, hostile_list, hostile_text, hostile_value

NAMES = ["fz/a", "fz/b", "new/one"]
CONTROL = ("\x00", "\r", "\n")


@dataclass
class Target:
    name: str
    mutating: bool
    valid: dict[str, st.SearchStrategy]
    hostile: dict[str, st.SearchStrategy]
    call: Callable[..., Any]
    value_args: tuple[str, ...] = ()


def _t(name, mutating, call, valid=None, hostile=None, value_args=()) -> Target:
    return Target(name, mutating, valid or {}, hostile or {}, call, value_args)


def _ctx_read(v, user_id, ip_address, user_agent, roles, forwarded_for):
    with v.security_context(user_id, ip_address, user_agent, roles=roles, forwarded_for=forwarded_for):
        return v.get_secret("fz/a", "development")


name_v, env_v = st.sampled_from(NAMES), st.sampled_from(ENVS)
H, HT = hostile_any, hostile_text
TARGETS = [
    _t("store_secret", True, lambda v, **k: v.store_secret(**k),
       dict(name=name_v, value=st.just("fuzz-value-1"), environment=env_v),
       dict(name=H, value=hostile_value, environment=H, secret_type=H, description=H, tags=hostile_list,
            rotation_interval_days=hostile_int, expires_at=H, cas=hostile_int, generator=H, max_versions=hostile_int,
            access_policy=st.one_of(H, st.dictionaries(HT, hostile_list, max_size=2))), ("value",)),
    _t("get_secret", False, lambda v, **k: v.get_secret(**k), dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, secret_id=H, version=hostile_int, label=H)),
    _t("reveal_secret", False, lambda v, **k: v.reveal_secret(**k), dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, secret_id=H, version=hostile_int, label=H)),
    _t("update_secret", True, lambda v, **k: v.update_secret(**k), dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, secret_id=H, value=hostile_value, description=H, tags=hostile_list,
            secret_type=H, expires_at=H, rotation_interval_days=hostile_int, cas=hostile_int), ("value",)),
    _t("rotate_secret", True, lambda v, value=None, **k: v.rotate_secret(
        **{**k, **({"generator": (lambda: value)} if value is not None else {})}),  # a generator of hostile values
       dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, secret_id=H, generator=H, value=hostile_value), ("value",)),
    _t("delete_secret", True, lambda v, **k: v.delete_secret(**k), dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, secret_id=H)),
    _t("restore_secret", True, lambda v, **k: v.restore_secret(**k), dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, secret_id=H)),
    _t("purge_secret", True, lambda v, **k: v.purge_secret(**k), dict(name=st.just("new/one"), environment=env_v),
       dict(name=H, environment=H, secret_id=H)),
    _t("list_secrets", False, lambda v, **k: list(v.list_secrets(**k)), {},
       dict(environment=H, secret_type=H, tag=H, prefix=H, search=H, limit=hostile_int, cursor=H,
            include_deleted=H, only_deleted=H)),
    _t("get_metadata", False, lambda v, **k: v.get_metadata(**k), dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, secret_id=H)),
    _t("list_versions", False, lambda v, **k: v.list_versions(**k), dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, secret_id=H)),
    _t("get_audit_log", False, lambda v, **k: v.get_audit_log(**k), {},
       dict(secret_id=H, limit=hostile_int, principal=H, operation=H, environment=H, outcome=H, name=H,
            since=H, until=H, cursor=H)),
    _t("export_audit", False, lambda v, **k: list(v.export_audit(**k)), dict(fmt=st.sampled_from(["csv", "jsonl"])),
       dict(fmt=H, principal=H, operation=H, environment=H, outcome=H, name=H, since=H, secret_id=H, bogus=H)),
    _t("verify_audit_log", False, lambda v, **k: v.verify_audit_log(**k), {},
       dict(checkpoint=st.one_of(H, st.fixed_dictionaries({"seq": hostile_int, "mac": H, "vault_id": H})))),
    _t("audit_hash", False, lambda v, **k: v.audit_hash(**k), dict(value=st.just("x")), dict(value=hostile_value)),
    _t("audit_counts", False, lambda v, **k: v.audit_counts(**k), {}, dict(days=hostile_int)),
    _t("grant", True, lambda v, **k: v.grant(**k),
       dict(subject=st.just("fuzzer"), levels=st.just(["read"]), environment=env_v, pattern=st.just("fz/*")),
       dict(subject=H, levels=hostile_list, environment=H, pattern=H, effect=H, subject_kind=H, note=H)),
    _t("revoke", True, lambda v, **k: v.revoke(**k), {}, dict(rule_id=hostile_int)),
    _t("list_rules", False, lambda v, **k: v.list_rules(**k), {}, dict(subject=H, environment=H, effect=H)),
    _t("set_roles", True, lambda v, **k: v.set_roles(**k), dict(name=st.just("fuzz-user"), roles=st.just([])),
       dict(name=H, roles=hostile_list)),
    _t("add_principal", True, lambda v, **k: v.add_principal(**k), dict(name=st.just("fuzz-user2")),
       dict(name=H, roles=hostile_list, kind=H, display_name=H, email=H)),
    _t("get_principal", False, lambda v, **k: v.get_principal(**k), dict(name=st.just("owner")), dict(name=H)),
    _t("effective_permissions", False, lambda v, **k: v.effective_permissions(**k),
       dict(principal=st.just("owner"), environment=env_v, name=name_v),
       dict(principal=H, environment=H, name=H, roles=hostile_list)),
    _t("who_can", False, lambda v, **k: v.who_can(**k), dict(name=name_v, environment=env_v),
       dict(name=H, environment=H, level=H)),
    _t("security_context", False, _ctx_read, dict(user_id=st.just("owner"), ip_address=st.none(),
                                                    user_agent=st.none(), roles=st.just(()), forwarded_for=st.none()),
       dict(user_id=H, ip_address=H, user_agent=H, roles=hostile_list, forwarded_for=H)),
]


@dataclass
class FuzzFigures:
    backend: str
    inputs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    findings: dict[str, str] = field(default_factory=dict)  # (function: kind) -> example

    @property
    def ok(self) -> bool:
        return not self.findings


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) < 160 else text[:150] + f"...<{len(text)} chars>"


def _secret_texts(kwargs: dict[str, Any], target: Target) -> list[str]:
    out = []
    for key in target.value_args:
        value = kwargs.get(key)
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("latin-1")
        if isinstance(value, str) and len(value.strip()) >= 6:
            out.append(value)
    return out


def check_one(vault, target: Target, kwargs: dict[str, Any], figures: FuzzFigures) -> None:
    """Call once and record any broken property under ``figures.findings``."""
    def finding(kind: str, detail: str) -> None:
        figures.findings.setdefault(f"{target.name}: {kind}", f"{detail} with {_short(kwargs)}")

    figures.inputs += 1
    before = snapshot(vault)
    try:
        result = target.call(vault, **kwargs)
        if isinstance(result, Iterator):
            list(result)
    except VaultError as exc:
        figures.outcomes[f"{target.name}: {type(exc).__name__}"] += 1
        msg = str(exc)
        if any(c in msg for c in CONTROL):
            finding("control characters in message", _short(msg))
        if any(s in msg or s[:40] in msg for s in _secret_texts(kwargs, target)):
            finding("value echoed in message", _short(msg))
        if snapshot(vault) != before:
            finding(f"{type(exc).__name__} but the vault changed", _short(msg))
        if isinstance(exc, StorageError):  # bad input must be refused before it reaches the database
            finding("input reached the database", _short(msg))
        return
    except Exception as exc:  # noqa: BLE001 - an undocumented exception is the finding
        figures.outcomes[f"{target.name}: undocumented {type(exc).__name__}"] += 1
        finding(f"undocumented {type(exc).__name__}", _short(str(exc)))
        if snapshot(vault) != before:
            finding(f"{type(exc).__name__} and the vault changed", "")
        return
    figures.outcomes[f"{target.name}: ok"] += 1
    if not target.mutating and snapshot(vault) != before:
        finding("a read changed the vault", "")


def run_fuzz(vault, examples: int, backend: str = "sqlite", targets: list[Target] | None = None) -> FuzzFigures:
    """``examples`` hypothesis examples spread over ``targets`` (default: every public function)."""
    figures = FuzzFigures(backend)
    targets = targets or TARGETS
    for name in NAMES[:2]:
        for env in ENVS[:2]:
            if vault.get_metadata(name, env) is None:
                vault.store_secret(name, f"seed-{env}", environment=env, tags=["fuzz"])

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def explore(data) -> None:
        target = data.draw(st.sampled_from(targets), label="function")
        chosen = data.draw(st.lists(st.sampled_from(sorted(target.hostile)), min_size=1, max_size=3, unique=True),
                           label="hostile args")
        kwargs = {k: data.draw(s, label=k) for k, s in target.valid.items() if k not in chosen}
        kwargs.update({k: data.draw(target.hostile[k], label=k) for k in chosen})
        check_one(vault, target, kwargs, figures)

    explore()
    return figures
