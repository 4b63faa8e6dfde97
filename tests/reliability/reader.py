"""Crash-test reader: threads read secrets forever, appending each name to a file AFTER the value came back.

    python reader.py VAULT_DIR LOG_FILE THREADS [DATABASE_URL]

Thread ``t`` reads ``g{t}/s{j}`` for j = 0, 1, 2, ... (cycling over SECRETS_PER_THREAD). A line
``name`` is appended (one ``os.write`` on an O_APPEND file, in the kernel before the next read)
only once ``get_secret`` returned the value, so the parent knows a lower bound of the values
each name handed out. The reads go through the group commit (concurrent readers share commits).
"""

from __future__ import annotations

import os
import sys
import threading

from vault_core import open_vault

SECRETS_PER_THREAD = 5


def main() -> None:
    vault_dir, log_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    url = sys.argv[4] if len(sys.argv) > 4 else None
    vault = open_vault(vault_dir, database_url=url, principal="owner", create=False)
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def reader(t: int) -> None:
        j = 0
        while True:
            name = f"g{t}/s{j % SECRETS_PER_THREAD}"
            if vault.get_secret(name, "production") != f"value-{name}":
                os.write(fd, f"WRONG {name}\n".encode())
                os._exit(3)
            os.write(fd, f"{name}\n".encode())
            j += 1

    os.write(fd, b"READY\n")
    workers = [threading.Thread(target=reader, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


if __name__ == "__main__":
    main()
