"""Row integrity at 100k secrets: a reader's first read after another process changed a secret, caught up
from the audit tail (the changed rows re-read) versus a full rescan of the table; next to the steady read.

    python -m benchmarks.integrity_catchup
"""
import pathlib, statistics, tempfile, time
from vault_core import open_vault
from vault_core.storage.repos import integrity
from benchmarks import build  # noqa: E402
d = pathlib.Path(tempfile.mkdtemp()) / "vault"
v = open_vault(d, principal="owner")
build.add_secrets(v, 0, 100_000, seed=1, now=v._clock())
v.store_secret(name="w/one", value="1", environment="production")
r = open_vault(d, principal="owner")
env, name = build.secret_name(5)
r.get_secret(name, environment=env)
def after_change(label):
    out = []
    for i in range(7):
        v.update_secret("w/one", "production", value=str(i))
        t = time.perf_counter(); r.get_secret(name, environment=env); out.append(time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(200): r.get_secret(name, environment=env)
    steady = (time.perf_counter() - t) / 200
    print(f"{label}: first read after a foreign change median {1e3*statistics.median(out):.2f} ms; steady read {1e3*steady:.3f} ms")
after_change("catch-up")
integrity._CHANGED.clear()
after_change("rescan  ")
