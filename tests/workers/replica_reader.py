"""A second replica: reads as 'svc', waits for a go file, reads again. Prints ok/denied per read."""

import os
import sys
import time

from vault_core import AccessDenied, open_vault

vault = open_vault(sys.argv[1], database_url=sys.argv[2], principal="owner")


def read() -> str:
    with vault.security_context("svc"):
        try:
            vault.get_secret("shared", "production")
            return "ok"
        except AccessDenied:
            return "denied"


print(read(), flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.01)
print(read(), flush=True)
