"""Re-encryption jobs (``rekey_jobs``): progress of moving every version onto the newest key term."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, insert, select, update

from ..schema import rekey_jobs
from ..tx import Tx

_J = rekey_jobs.c


def open_job(tx: Tx, target_term: int, now: int, total: int) -> dict[str, Any]:
    """The unfinished job for ``target_term`` (resumed after a crash), or a new one."""
    row = tx.one(select(rekey_jobs).where(and_(_J.target_term == target_term, _J.finished_at.is_(None)))
                 .order_by(_J.id.desc()))
    if row is not None:
        tx.run(update(rekey_jobs).where(_J.id == row["id"]).values(total=row["done"] + total))
        return {**row, "total": row["done"] + total}
    job_id = tx.insert_id(insert(rekey_jobs).values(target_term=target_term, started_at=now, done=0, total=total))
    return {"id": job_id, "target_term": target_term, "started_at": now, "done": 0, "total": total,
            "finished_at": None}


def advance_job(tx: Tx, job_id: int, n: int) -> None:
    tx.run(update(rekey_jobs).where(_J.id == job_id).values(done=_J.done + n))


def finish_job(tx: Tx, job_id: int, now: int) -> None:
    tx.run(update(rekey_jobs).where(_J.id == job_id).values(finished_at=now))


def jobs(tx: Tx, limit: int = 20) -> list[Mapping[str, Any]]:
    return tx.all(select(rekey_jobs).order_by(_J.id.desc()).limit(limit))
