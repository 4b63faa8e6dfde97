"""Latency and throughput measurement: median and p99 over repeated calls."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Stat:
    """Latency figures of one operation, in milliseconds."""

    median_ms: float
    p99_ms: float
    mean_ms: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": round(self.median_ms, 4), "p99_ms": round(self.p99_ms, 4),
                "mean_ms": round(self.mean_ms, 4), "n": self.n}


def summarise(samples_ns: list[int]) -> Stat:
    ms = sorted(s / 1e6 for s in samples_ns)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return Stat(statistics.median(ms), p99, statistics.fmean(ms), len(ms))


def measure(fn: Callable[[int], Any], iterations: int, *, warmup: int = 3) -> Stat:
    """Call ``fn(i)`` ``iterations`` times (after ``warmup`` calls) and time each call."""
    for i in range(warmup):
        fn(-1 - i)
    samples = []
    clock = time.perf_counter_ns
    for i in range(iterations):
        t0 = clock()
        fn(i)
        samples.append(clock() - t0)
    return summarise(samples)


def throughput(make_worker: Callable[[int], Callable[[int], Any]], threads: int, seconds: float) -> float:
    """Operations per second of ``threads`` threads, each calling its worker until time is up.

    ``make_worker(t)`` builds thread t's callable (so each can own its names or counters).
    """
    counts = [0] * threads
    errors: list[BaseException] = []
    start_gate = threading.Barrier(threads + 1)

    def run(t: int) -> None:
        work = make_worker(t)
        start_gate.wait()
        stop = time.perf_counter() + seconds
        n = 0
        try:
            while time.perf_counter() < stop:
                work(n)
                n += 1
        except BaseException as exc:  # surface worker failures in the main thread
            errors.append(exc)
        counts[t] = n

    pool = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for th in pool:
        th.start()
    t0 = time.perf_counter()
    start_gate.wait()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(counts) / elapsed
