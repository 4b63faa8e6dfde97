"""Master key rotation: new key terms, resumable re-encryption, retiring terms, changing the master key.

* ``rotate_key_term()`` adds a data key term; new writes use it at once (other
  processes pick it up within seconds, or at once when they meet it).
* ``reencrypt(progress, batch)`` re-seals every version still under an older
  term, one batch per transaction. Work left is simply "versions whose
  ``key_term`` is below the target", so a crash (kill -9) loses nothing and
  the next call resumes; ``rekey_jobs`` keeps the progress for the console.
  Terms no version uses any more are then marked retired (their wrapped key
  stays, so an old backup still opens).
* The active term is replaced automatically once it has sealed
  ``key_term_rotate_after`` values (2^31, well before the 2^32 random-nonce
  limit of NIST SP 800-38D), checked by the scheduler and by every re-encryption.
* ``change_master_key()`` re-wraps every wrapped key under a new master key in
  one transaction and replaces the key file atomically (staged file, database
  commit, rename; an interrupted change is finished or undone at the next unlock).

Each step needs the admin role and writes its audit row in its own transaction.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..crypto import KeyTerm, sealer
from ..crypto.keyring import ROTATE_BEFORE, unwrap_key, wrap_key
from ..crypto.masterkey import (commit_key_file, generate_master_key, key_file_needs_passphrase, key_file_path,
                               stage_key_file, staged_path)
from ..errors import ValidationError
from ..validate import check_int
from ..storage import Storage, repos
from ..types import Clock, to_datetime
from .keys import KeyHolder, refreshed
from .runner import Attempt, Runner
from .two_factor import reseal_secrets

ProgressFn = Callable[[int, int], Any]


class RekeyService:
    """Key terms, re-encryption and master-key change (admin role)."""

    def __init__(self, runner: Runner, storage: Storage, keys: KeyHolder, clock: Clock, vault_dir: Path | None):
        self._runner, self._storage, self._keys, self._clock, self._vault_dir = runner, storage, keys, clock, vault_dir
        self.rotate_after = ROTATE_BEFORE  # a data key term seals at most this many values

    # -- key terms ------------------------------------------------------------------------------
    def key_terms(self) -> list[dict[str, Any]]:
        """Every data key term: created, encryptions, versions sealed under it, retired, active.

        Raises ``Sealed``, ``AccessDenied`` (not admin or auditor), ``StorageError``.
        """
        with self._runner.attempt("key_terms", durable=False, audited=False) as att:
            att.require_role("admin", "auditor")
            per_term = repos.versions.versions_per_term(att.tx)
            rows = repos.keys.data_terms(att.tx)
            active = max(r["term"] for r in rows)
            return [{"term": r["term"], "created_at": to_datetime(r["created_at"]), "encryptions": r["encryptions"],
                     "versions": per_term.get(r["term"], 0), "retired_at": to_datetime(r["retired_at"]),
                     "active": r["term"] == active} for r in rows]

    def rotate_key_term(self) -> int:
        """Add a new data key term; returns its number. New writes use it from now on.

        Raises ``Sealed``, ``AccessDenied`` (not admin), ``InvalidKey`` (the master key changed), ``StorageError``.
        """
        with self._runner.attempt("key_term_add") as att:
            att.require_role("admin")
            term = self._add_term(att, "requested")
        self._adopt(term)
        return term.term

    def ensure_key_term_fresh(self) -> int | None:
        """Add a term if the active one has sealed ``rotate_after`` values; returns the new term (else None).

        Raises ``Sealed``, ``InvalidKey``, ``StorageError``.
        """
        with self._storage.transaction(write=False, durable=False) as tx:
            active = repos.keys.data_terms(tx)[-1]
        if active["encryptions"] < self.rotate_after:
            return None
        with self._runner.attempt("key_term_add") as att:  # automatic: no role needed, but audited as the caller
            active = repos.keys.data_terms(att.tx)[-1]
            if active["encryptions"] < self.rotate_after:
                att.reason = f"not needed: term {active['term']} is fresh (another process rotated it)"
                return None
            term = self._add_term(att, f"automatic: term {active['term']} sealed {active['encryptions']} values")
        self._adopt(term)
        return term.term

    def _add_term(self, att: Attempt, why: str) -> KeyTerm:
        keys = self._keys.get()
        audit_row = repos.keys.wrapped_keys_of(att.tx, "audit")[0]
        # the master key we hold must still be the vault's (another process may have changed it)
        unwrap_key(keys.master, "audit", audit_row["term"], audit_row["wrapped"])
        term = repos.keys.data_terms(att.tx)[-1]["term"] + 1
        raw, now = os.urandom(32), self._clock()
        repos.keys.put_wrapped_key(att.tx, "data", term, wrap_key(keys.master, "data", term, raw), now)
        att.reason = f"term {term} added ({why}); new writes use it"
        return KeyTerm(term, raw, datetime.fromtimestamp(now / 1e6, tz=timezone.utc))

    def _adopt(self, term: KeyTerm) -> None:
        """After the commit only: never seal under a term the database does not hold."""
        barrier = self._keys.get().barrier
        barrier.use(barrier.keyring.with_term(term))

    # -- re-encryption ------------------------------------------------------------------------------
    def reencrypt(self, progress: ProgressFn | None = None, batch: int = 500) -> dict[str, Any]:
        """Re-seal every version under an older term with the active term, ``batch`` per transaction.

        ``progress(done, total)`` is called after each committed batch. Safe to
        interrupt anywhere and to call again: it resumes where it stopped.
        Returns the job: target term, versions re-encrypted, retired terms.
        Raises ``Sealed``, ``AccessDenied`` (not admin), ``ValidationError`` (batch, progress),
        ``IntegrityError`` (a tampered version), ``StorageError``.
        """
        check_int(batch, "batch", 1, 10_000)
        if progress is not None and not callable(progress):
            raise ValidationError("progress must be a callable taking (done, total)")
        self.ensure_key_term_fresh()
        barrier = self._keys.get().barrier
        with self._runner.attempt("reencrypt_start") as att:
            att.require_role("admin")
            target = repos.keys.data_terms(att.tx)[-1]["term"]
            job = repos.jobs.open_job(att.tx, target, self._clock(), repos.versions.count_below(att.tx, target))
            if barrier.keyring.active.term < target:  # a term another process added: load it in this transaction
                refreshed(self._keys.get(), att.tx, force=True)
            att.reason = f"job {job['id']}: {job['total'] - job['done']} versions to term {target}" + \
                (f" (resuming at {job['done']})" if job["done"] else "")
        done, total = job["done"], job["total"]
        if progress is not None:
            progress(done, total)
        while True:
            with self._runner.attempt("reencrypt_batch") as att:
                att.require_role("admin")
                n = self._reencrypt_batch(att, target, batch, job["id"])
                att.reason = f"job {job['id']}: {n} versions re-sealed under term {target}"
            done += n
            total = max(total, done)
            if progress is not None and n:
                progress(done, total)
            if n < batch:
                break
        with self._runner.attempt("reencrypt_finish") as att:
            att.require_role("admin")
            resealed = reseal_secrets(att.tx, barrier, target)  # users' TOTP secrets (service/two_factor.py)
            retired = self._retire_unused(att, target)
            repos.jobs.finish_job(att.tx, job["id"], self._clock())
            att.reason = (f"job {job['id']}: {done} versions and {resealed} two-factor secrets under term {target}; "
                          f"retired terms {retired or 'none'}")
        return {"job": job["id"], "target_term": target, "done": done, "total": total, "retired": retired}

    def _reencrypt_batch(self, att: Attempt, target: int, batch: int, job_id: int) -> int:
        keys = self._keys.get()
        rows = repos.versions.versions_below(att.tx, target, batch)
        rewrites = []
        for r in rows:
            barrier = refreshed(keys, att.tx, r["ciphertext"])
            blob = sealer.reseal_version(barrier, r, r["version"], r["ciphertext"])
            rewrites.append({"sid": r["secret_id"], "ver": r["version"], "old_term": r["key_term"], "blob": blob,
                             "new_term": barrier.term_of(blob)})
        repos.versions.rewrite_versions(att.tx, rewrites)
        for term in {w["new_term"] for w in rewrites}:  # every seal counts, even one a racing write replaced
            repos.keys.count_encryptions(att.tx, term, sum(1 for w in rewrites if w["new_term"] == term))
        repos.jobs.advance_job(att.tx, job_id, len(rows))
        return len(rows)

    def _retire_unused(self, att: Attempt, target: int) -> list[int]:
        used = repos.versions.versions_per_term(att.tx)
        bound = repos.users.two_factor_terms(att.tx)
        retired = []
        for r in repos.keys.data_terms(att.tx):
            if r["term"] < target and r["retired_at"] is None and not used.get(r["term"]) and r["term"] not in bound:
                repos.keys.retire_term(att.tx, r["term"], self._clock())
                retired.append(r["term"])
        return retired

    def rekey_jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent re-encryption jobs (progress for the console), newest first.

        Raises ``Sealed``, ``AccessDenied`` (not admin or auditor), ``StorageError``.
        """
        with self._runner.attempt("rekey_jobs", durable=False, audited=False) as att:
            att.require_role("admin", "auditor")
            return [{"id": j["id"], "target_term": j["target_term"], "started_at": to_datetime(j["started_at"]),
                     "finished_at": to_datetime(j["finished_at"]), "done": j["done"], "total": j["total"]}
                    for j in repos.jobs.jobs(att.tx, limit)]

    # -- master key ------------------------------------------------------------------------------------
    def change_master_key(self, new_key: bytes | None = None, passphrase: str | None = None, *,
                          kdf: str = "scrypt") -> None:
        """Re-wrap every key under a new master key (random unless given) and replace the key file.

        With a key file, the new file is written atomically (0600), passphrase-
        wrapped when ``passphrase`` is given (required if the old one was). With
        ``VAULT_MASTER_KEY`` or an explicit key, pass ``new_key`` and store it
        yourself before restarting. Other processes must unlock again afterwards.
        Raises ``Sealed``, ``AccessDenied`` (not admin), ``ValidationError`` (bad key, missing passphrase),
        ``InvalidKey``, ``StorageError``.
        """
        keys = self._keys.get()
        file_based = self._keys.source in ("key-file", "passphrase-file")
        if new_key is not None and (not isinstance(new_key, (bytes, bytearray)) or len(new_key) != 32):
            raise ValidationError("new_key must be 32 bytes")
        if not file_based and new_key is None:
            raise ValidationError("the master key does not come from a key file here: pass new_key and "
                                  "store it where the vault reads its key")
        path = key_file_path(self._vault_dir) if file_based else None
        # ask the file, not key_source: never downgrade a passphrase-protected key file to a plain one
        if path is not None and key_file_needs_passphrase(path) and passphrase is None:
            raise ValidationError("the key file is passphrase-protected: give the (new) passphrase")
        new = bytes(new_key) if new_key is not None else generate_master_key()
        try:
            with self._runner.attempt("master_key_change") as att:
                att.require_role("admin")
                if path is not None:  # staged first: a crash after the commit is finished at next unlock
                    stage_key_file(path, new, passphrase=passphrase, kdf=kdf)
                rows = repos.keys.wrapped_keys_of(att.tx)
                for r in rows:
                    raw = unwrap_key(keys.master, r["purpose"], r["term"], r["wrapped"])
                    repos.keys.rewrap_key(att.tx, r["purpose"], r["term"], wrap_key(new, r["purpose"], r["term"], raw))
                att.reason = f"{len(rows)} keys re-wrapped" + ("; key file replaced" if path else
                                                                "; store the new key before restarting")
        except BaseException:
            if path is not None:  # nothing was committed: the current key file stays the only one
                staged_path(path).unlink(missing_ok=True)
            raise
        if path is not None:
            commit_key_file(path)
        keys.master = new
        if file_based:
            self._keys.source = "passphrase-file" if passphrase is not None else "key-file"
