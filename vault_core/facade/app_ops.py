"""Cheap operations for application helpers: which version of which secret is current."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..types import AccessLevel
from ..validate import canonical_name
from ..storage import repos
from .base import VaultBase


class AppOps(VaultBase):
    """Version checks for caches (``vault_core.streamlit.secrets``); never values."""

    def secret_versions(self, environment: Any = None, names: Iterable[str] | None = None
                        ) -> dict[str, tuple[int, tuple[str, ...]]]:
        """``{name: (current_version, tags)}`` of the live secrets the caller may READ.

        Metadata only: not audited (the value reads that follow are). Names the
        caller may not READ are left out, as are missing ones.
        """
        wanted = None if names is None else sorted({canonical_name(n) for n in names})
        with self.attempt("versions", environment=environment, durable=False, audited=False) as att:
            env, user, roles = att.environment, att.ctx.user_id, att.roles
            out: dict[str, tuple[int, tuple[str, ...]]] = {}
            evaluate = att.rules.evaluate  # (granted levels, ...): no Decision text per name
            for name, version, tags in repos.secrets.live_versions(att.tx, env, wanted):
                if AccessLevel.READ in evaluate(user, roles, env, name)[0]:
                    out[name] = (version, tuple(json.loads(tags)) if tags and tags != "[]" else ())
            return out

