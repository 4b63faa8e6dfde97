"""Benchmark harness: the seed's table at scale, beside peers and the floor.

Run ``python -m benchmarks.run`` (full) or ``python -m benchmarks.run --quick``.
"""
