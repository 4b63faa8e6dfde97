"""Writes secrets forever, printing one line per acknowledged write (after the call returns).

Usage: acked_writer.py VAULT_DIR START  — killed with SIGKILL by the test.
"""

import sys

from vault_core import open_vault

vault = open_vault(sys.argv[1], principal="owner")
i = int(sys.argv[2])
while True:
    name = f"k{i % 7}"
    value = f"value-{i}"
    if i % 3 == 0:
        vault.store_secret(f"new.{i}", value)
        print(f"new.{i} {value}", flush=True)
    else:
        vault.store_secret(name, value)
        print(f"{name} {value}", flush=True)
    i += 1
