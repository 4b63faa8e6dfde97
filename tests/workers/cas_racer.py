"""One racer: waits for a go file, then tries update_secret(cas=1) once. Prints won/conflict."""

import os
import sys
import time

from vault_core import Conflict, open_vault

vault = open_vault(sys.argv[1], database_url=sys.argv[2] or None, principal="owner")
go = sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.001)
try:
    vault.update_secret("race", value=f"from-{os.getpid()}", cas=1)
    print("won", flush=True)
except Conflict:
    print("conflict", flush=True)
