"""Crash-test writer: runs audited writes forever, printing one line before and after each call.

    python writer.py VAULT_DIR SEED [DATABASE_URL]

``B {...}`` is printed (flushed) before a call, ``A {...}`` only after it returned, so the parent
knows every acknowledged write and the one call that may have been in flight at the kill.
"""

from __future__ import annotations

import json
import random
import secrets
import sys

from vault_core import VaultError, open_vault

ENVS = ("development", "production")
PRINCIPALS = ("svc-a", "svc-b", "role-x")


def emit(tag: str, record: dict) -> None:
    sys.stdout.write(f"{tag} {json.dumps(record)}\n")
    sys.stdout.flush()


def main() -> None:
    vault_dir, seed = sys.argv[1], int(sys.argv[2])
    url = sys.argv[3] if len(sys.argv) > 3 else None
    rng = random.Random(seed)
    vault = open_vault(vault_dir, database_url=url, principal="owner", create=False)
    known = [(m.environment, m.name) for m in vault.list_secrets(limit=1000)]
    rules = [r.id for r in vault.list_rules() if r.id and not r.note.startswith("built-in")]
    emit("READY", {"secrets": len(known), "rules": len(rules)})
    for i in range(100_000):
        roll = rng.random()
        value = secrets.token_hex(rng.randint(4, 40))
        if roll < 0.06 or len(known) < 4:
            env, name = rng.choice(ENVS), f"w{seed}/s{i}"
            rec = {"op": "store", "env": env, "name": name, "value": value}
            emit("B", rec)
            vault.store_secret(name, value, environment=env, cas=0, max_versions=1000,
                               tags=["crash"], description=f"writer {seed}")
            rec["version"] = 1
            known.append((env, name))
        elif roll < 0.55:
            env, name = rng.choice(known)
            rec = {"op": "update", "env": env, "name": name, "value": value}
            emit("B", rec)
            rec["version"] = vault.update_secret(name, env, value=value, description=f"u{i}")
        elif roll < 0.75:
            env, name = rng.choice(known)
            rec = {"op": "rotate", "env": env, "name": name, "value": value}
            emit("B", rec)
            rec["version"] = vault.rotate_secret(name=name, environment=env, generator=lambda: value)
        elif roll < 0.9 or not rules:
            rec = {"op": "grant", "subject": rng.choice(PRINCIPALS), "env": rng.choice(ENVS)}
            emit("B", rec)
            rec["rule_id"] = vault.grant(rec["subject"], ["read"], environment=rec["env"], pattern=f"w{seed}/*")
            rules.append(rec["rule_id"])
        else:
            rule_id = rules.pop(rng.randrange(len(rules)))
            rec = {"op": "revoke", "rule_id": rule_id}
            emit("B", rec)
            try:
                vault.revoke(rule_id)
            except VaultError as exc:  # must not happen: report it to the parent
                rec["error"] = f"{type(exc).__name__}: {exc}"
        emit("A", rec)


if __name__ == "__main__":
    main()
