"""Extract the ECS field definitions the audit tests check ECS events against.

    git -C ecs show v9.4.0:generated/ecs/ecs_flat.yml > /tmp/ecs_flat.yml
    python tools/ecs_fields.py /tmp/ecs_flat.yml 9.4.0 > tests/data/ecs-9.4.0-fields.json   # needs PyYAML

Keeps, for the field sets the vault emits, each field's type and whether it is an array, and the
allowed values of the categorisation fields (``event.kind``, ``event.category`` with the event types
each category expects, ``event.type``, ``event.outcome``).
"""

from __future__ import annotations

import json
import sys

import yaml  # only needed to regenerate the vendored file

FIELD_SETS = ("@timestamp", "message", "labels", "tags", "ecs", "event", "user", "source", "client", "related",
              "service", "user_agent", "http", "url")


def extract(flat: dict, version: str) -> dict:
    fields = {name: {"type": f["type"], "array": "array" in (f.get("normalize") or [])}
              for name, f in flat.items() if name.split(".")[0] in FIELD_SETS}
    allowed = {name: {v["name"]: v.get("expected_event_types", []) for v in flat[name]["allowed_values"]}
               for name in ("event.kind", "event.category", "event.type", "event.outcome")}
    return {"version": version, "fields": fields, "allowed": allowed}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        json.dump(extract(yaml.safe_load(fh), sys.argv[2]), sys.stdout, indent=0, sort_keys=True)
        sys.stdout.write("\n")
