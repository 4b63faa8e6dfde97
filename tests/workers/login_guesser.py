"""One guessing process: waits for a go file, then tries each password given once, all at the same moment
as the other guessers. Prints one JSON line: how many passwords reached bcrypt, and each outcome."""

import json
import os
import sys
import threading
import time

import bcrypt

from vault_core import open_vault
from vault_core.errors import AccountLocked, LoginFailed

vault = open_vault(sys.argv[1], database_url=sys.argv[2] or None, strict=True, create=False)
go, user, ip, passwords = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
checks, lock = [], threading.Lock()
real_check = bcrypt.checkpw


def counting_check(password, hashed):
    with lock:
        checks.append(1)
    return real_check(password, hashed)


bcrypt.checkpw = counting_check
outcomes = []


def guess(pw):
    try:
        vault.verify_login(user, pw, ip)
        outcomes.append("ok")
    except AccountLocked:
        outcomes.append("locked")
    except LoginFailed:
        outcomes.append("failed")


threads = [threading.Thread(target=guess, args=(pw,)) for pw in passwords]
while not os.path.exists(go):
    time.sleep(0.001)
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"checks": len(checks), "outcomes": outcomes}), flush=True)
vault.storage.dispose()
