"""Values of every shape: masked multi-line text, a file, JSON, key/value pairs, or a generated value.

The inputs live in an ``st.form`` (a press of its submit button always carries what was typed, even while
the text area is being left); the shape picker, ``shape(prefix)``, sits outside the form so that choosing a
shape redraws the inputs at once. Inside the form, ``value_input(prefix, secret_type, shape)`` draws the
inputs and returns ``(value, problem, note)``, and ``buttons`` draws Generate, Check and the form's own
submit button. The value is: the value exactly as it will be stored (text
byte for byte, newlines and trailing whitespace included; a file's bytes,
as text when they are UTF-8), or a problem sentence, and a note shown
before saving (a certificate's subject and expiry). A structured value is
stored as one secret holding compact JSON and is shown back as the same
structure by ``show_value``.

Masking: the text area sits in a keyed container (its CSS class is
``st-key-<key>``) whose characters are drawn as discs; the text never
goes to the browser except as what the user typed.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import streamlit as st

from ..rotation import BUILTIN_GENERATORS, default_generator_name

SHAPES = ("Text", "File", "JSON", "Key/value pairs")
_MASK_CSS = "<style>[class*='st-key-masked_'] textarea {-webkit-text-security: disc;}</style>"


def certificate_note(value: str | bytes) -> tuple[str | None, datetime | None]:
    """(problem or None, expiry) of a PEM certificate; the problem never quotes the value."""
    from cryptography import x509

    data = value.encode() if isinstance(value, str) else value
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return "A certificate must be PEM text starting with -----BEGIN CERTIFICATE-----.", None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        return "That is not a readable PEM certificate.", None
    return None, cert.not_valid_after_utc


def _generate(key: str, secret_type: str) -> None:
    """Generate button callback: put a value from the type's built-in generator into the text area."""
    st.session_state[key] = BUILTIN_GENERATORS[default_generator_name(secret_type)]()


def _text(prefix: str, label: str) -> str:
    with st.container(key=f"masked_{prefix}"):
        st.html(_MASK_CSS)
        return st.text_area(label, key=f"{prefix}_value", height=120, placeholder="Paste or type; newlines are kept")


def _file(prefix: str) -> str | bytes:
    up = st.file_uploader("File", key=f"{prefix}_file_{st.session_state.get(f'{prefix}_gen', 0)}")
    if up is None:
        return ""
    data = up.getvalue()
    try:
        return data.decode("utf-8")  # text files are stored as text: the same bytes when read back
    except UnicodeDecodeError:
        return data


def _json(prefix: str) -> tuple[str, str | None]:
    raw = st.text_area("JSON", key=f"{prefix}_json", height=120, placeholder='{"user": "app", "port": 5432}')
    if not raw.strip():
        return "", None
    try:
        return json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False), None
    except json.JSONDecodeError as exc:
        return "", f"That JSON is not valid (line {exc.lineno}, column {exc.colno})."


def _pairs(prefix: str) -> tuple[str, str | None]:
    table = st.data_editor(pd.DataFrame({"key": [""], "value": [""]}),  # one empty row to start typing in
                           key=f"{prefix}_pairs_{st.session_state.get(f'{prefix}_gen', 0)}", num_rows="dynamic",
                           hide_index=True, width="stretch",
                           column_config={"key": st.column_config.TextColumn("Key"),
                                          "value": st.column_config.TextColumn("Value")})
    pairs: dict[str, str] = {}
    for row in table.to_dict("records"):
        k, v = row.get("key"), row.get("value")
        if k is None or (isinstance(k, float) and pd.isna(k)) or not str(k).strip():
            continue
        if str(k) in pairs:
            return "", f"The key {str(k)!r} appears twice."
        pairs[str(k)] = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
    return (json.dumps(pairs, separators=(",", ":"), ensure_ascii=False) if pairs else ""), None


def shape(prefix: str) -> str:
    """The "Value as" picker (outside the form: a new shape redraws the inputs at once)."""
    return st.radio("Value as", SHAPES, horizontal=True, key=f"{prefix}_shape")


def value_input(prefix: str, secret_type: str, shape: str,
                label: str = "Value") -> tuple[str | bytes, str | None, str | None]:
    """Draw the value inputs of ``shape`` (inside the form); (value or '', problem or None, note before saving).

    Always one container, whatever the shape: the elements after it keep their places (and their state).
    """
    problem = None
    with st.container():
        if shape == "File":
            value = _file(prefix)
        elif shape == "JSON":
            value, problem = _json(prefix)
        elif shape == "Key/value pairs":
            value, problem = _pairs(prefix)
        else:
            value = _text(prefix, label)
    note = None
    if value and problem is None and secret_type == "certificate":
        problem, expiry = certificate_note(value)
        if expiry is not None:
            left = expiry - datetime.now(timezone.utc)
            note = (f"Certificate valid until {expiry:%Y-%m-%d %H:%M} UTC"
                    + (" (already expired)." if left.total_seconds() < 0 else f" ({left.days} days from now)."))
    return value, problem, note


def buttons(prefix: str, secret_type: str, shape: str, submit: str, reason: str | None) -> bool:
    """The form's buttons: Check (shows the problem or note without saving; Enter in a field presses it),
    Generate (text values) and ``submit``, disabled with ``reason`` when given. True when ``submit`` was pressed."""
    cols = st.columns(3)
    cols[0].form_submit_button("Check", key=f"{prefix}_check",  # first: Enter in a field presses it
                               help="Check the name and value (a certificate shows its expiry) without saving.")
    gen = default_generator_name(secret_type)
    if shape == SHAPES[0]:
        cols[1].form_submit_button(f"Generate ({gen})", key=f"{prefix}_generate", on_click=_generate,
                                   args=(f"{prefix}_value", secret_type),
                                   help=f"Fill in a new value from the built-in '{gen}' generator of the "
                                        f"{secret_type} type.")
    return cols[2].form_submit_button(submit, type="primary", key=f"{prefix}_submit", disabled=reason is not None,
                                      help=reason)


def clear(prefix: str) -> None:
    """Forget what was typed (a callback, after saving): text, JSON, pairs and the file."""
    for suffix in ("value", "json"):
        st.session_state[f"{prefix}_{suffix}"] = ""
    st.session_state[f"{prefix}_gen"] = st.session_state.get(f"{prefix}_gen", 0) + 1


def structure(value: str) -> Any | None:
    """The JSON object or list a value holds, if it holds one."""
    if not value.startswith(("{", "[")):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, (dict, list)) else None


def show_value(value: str | bytes | None) -> None:
    """A revealed value, this run only: text as is (with a copy button), JSON as its structure, bytes as base64."""
    if value is None:
        st.info("That version no longer exists.")
    elif isinstance(value, bytes):
        st.code(base64.b64encode(value).decode(), language=None)
        st.caption("Binary value, shown as base64.")
    else:
        parsed = structure(value)
        if isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()):
            st.dataframe(pd.DataFrame({"Key": list(parsed), "Value": list(parsed.values())}), hide_index=True)
        elif parsed is not None:
            st.json(parsed)
        exact_code(value)


def exact_code(text: str) -> None:
    """``st.code`` (which has a copy button) showing ``text`` byte for byte.

    st.code drops one leading and one trailing newline of its body (Streamlit 1.67, elements/code.py), so a
    value starting or ending with one gets one more; tests/test_console_values.py checks the round trip.
    """
    st.code(("\n" if text.startswith("\n") else "") + text + ("\n" if text.endswith("\n") else ""), language=None)
