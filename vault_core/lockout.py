"""Who may try a password now: the login throttle (OWASP Authentication Cheat Sheet, NIST SP 800-63B 5.2.2).

Every attempt is *reserved* — written as a pending row, in one write transaction that first counts the
recent attempts — before its password is checked, and it stays counted as a failure unless the check
succeeds. However many guesses arrive at once (threads, processes, replicas), each sees the ones before
it, so no more than the limits below ever reach bcrypt.

Counted per (account, source) — the source is the client address, an IPv6 address by its /64:

* after its 2nd, 3rd and 4th failure, that source waits 1, 2, then 4 seconds before its next attempt on
  the account (a single typo costs nothing);
* the 5th failure within 15 minutes locks that source out of that account for 15 minutes.

Counted per account, from every source: 100 failures within 24 hours (NIST's bound on consecutive
failures) lock the account itself for 24 hours. So a stranger's guesses slow an account down but do not
keep its owner, logging in from another address, out — short of a distributed attack of 100 guesses a
day, which an admin answers with ``unlock_user`` (``vault-console users unlock``, the Users page).
A success clears the failures of its own source only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .types import US, US_PER_DAY, US_PER_MIN, to_datetime

SOURCE_LIMIT = 5
SOURCE_WINDOW_US = 15 * US_PER_MIN
SOURCE_LOCK_US = 15 * US_PER_MIN
ACCOUNT_LIMIT = 100
ACCOUNT_WINDOW_US = US_PER_DAY
ACCOUNT_LOCK_US = US_PER_DAY
MAX_DELAY_US = 8 * US
ADMIN_LOCK_US = 2**62  # principals.locked_until of a lock set by an admin


def source_of(ip: str | None) -> str:
    """The address attempts are counted by: an IPv4 address, an IPv6 /64, or ``local``."""
    if not ip:
        return "local"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


@dataclass(frozen=True)
class Counts:
    """Recent attempts (pending ones included) as the reservation saw them."""

    source_failures: int  # from this source, within SOURCE_WINDOW_US
    source_last: int | None  # time of the newest of those
    account_failures: int  # from every source, within ACCOUNT_WINDOW_US


def delay_us(failures: int) -> int:
    """How long a source waits after its ``failures``-th failure before trying again."""
    return 0 if failures <= 1 else min(US << (failures - 2), MAX_DELAY_US)


def refused_until(counts: Counts, now: int, locked_until: int | None) -> tuple[int, str] | None:
    """(until when, why) if this attempt must be refused without checking its password, else None."""
    if locked_until and locked_until > now:
        return locked_until, "the account is locked"
    if counts.account_failures >= ACCOUNT_LIMIT:
        return now + ACCOUNT_LOCK_US, f"{ACCOUNT_LIMIT} failed logins in 24 hours locked the account"
    last = counts.source_last or now
    if counts.source_failures >= SOURCE_LIMIT:
        return last + SOURCE_LOCK_US, f"{SOURCE_LIMIT} failed logins from this address in 15 minutes"
    wait = last + delay_us(counts.source_failures)
    if counts.source_failures and wait > now:
        return wait, "too soon after a failed login from this address"
    return None


def until_text(us: int) -> str:
    """A lock's end for a message: ``2026-12-02 01:23:45 UTC`` (an admin's lock has no end)."""
    if us >= ADMIN_LOCK_US:
        return "an admin unlocks it"
    return to_datetime(us).strftime("%Y-%m-%d %H:%M:%S UTC")
