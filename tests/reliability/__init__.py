"""Reliability suite: crashes (kill -9), concurrent replicas, lost and full storage, hostile input, leaks.

The scenarios live in plain modules (``crash.py``, ``load.py``, ...) that return their figures, so
the pytest tests run them bounded and ``tools/fault_suite.py`` runs them at full scale.
"""
