"""Rotation: a new value from a generator becomes the current version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ValidationError
from ..models import AccessLevel
from ..names import check_value
from ..rotation import BUILTIN_GENERATORS, default_generator_name
from .base import NO_NAME
from .secrets_ops import US_PER_DAY, SecretOps, encode_plain


class RotationOps(SecretOps):
    """Rotate secrets with built-in, registered or passed-in generators."""

    def register_generator(self, name: str, generator: Callable[[], Any]) -> None:
        """Make a custom generator findable by name (for scheduled rotations)."""
        if not isinstance(name, str) or not name or len(name) > 128 or not callable(generator):
            raise ValidationError("register_generator needs a name and a callable")
        self._generators[name] = generator

    def _generator(self, spec: Any, row) -> tuple[Callable[[], Any], str | None]:
        if callable(spec):
            return spec, getattr(spec, "__name__", None)
        name = spec or row["generator"] or default_generator_name(row["secret_type"])
        gen = self._generators.get(name) or BUILTIN_GENERATORS.get(name)
        if gen is None:
            raise ValidationError(f"no generator named {name!r} is registered in this process")
        return gen, name

    def rotate_secret(self, secret_id: str | None = None, generator: Any = None, *, name: str | None = None,
                      environment: Any = None) -> int:
        """Replace the value with a freshly generated one; returns the new version. Needs ROTATE."""
        env = environment if secret_id is None else None
        with self.attempt("rotate", name=name if secret_id is None else NO_NAME, environment=env) as att:
            if secret_id is None:
                att.require(AccessLevel.ROTATE)
            row = self._locate(att, secret_id)
            att.require(AccessLevel.ROTATE)
            if row is None or row["deleted_at"] is not None:
                from ..errors import NotFound

                raise NotFound(f"no secret {att.environment}/{att.name}")
            gen, gen_name = self._generator(generator, row)
            value = gen()
            data = encode_plain(check_value(value, self.max_value_bytes), isinstance(value, str))
            now = self.clock()
            interval = row["rotation_interval_days"]
            extra = dict(last_rotated_at=now, next_rotation_at=now + interval * US_PER_DAY if interval else None)
            if gen_name and (gen_name in self._generators or gen_name in BUILTIN_GENERATORS):
                extra["generator"] = gen_name
            return self._new_version(att, row, data, cas=None, extra=extra)
