"""Two-factor sign-in on the Account page: set up (QR code and text secret, once), confirm, turn off.

The secret and the recovery codes are drawn only in the run that made them and kept nowhere in the
session: the QR code is an inline ``data:`` image (allowed by the console's CSP ``img-src data:``;
nothing goes through ``/media/``), and the code fields are cleared on submit.
"""

from __future__ import annotations

import base64
import html

import streamlit as st

from ..errors import AccessDenied, AccountLocked, Conflict, NotFound, ValidationError
from . import feedback
from .auth import Guard

ERRORS = (AccessDenied, Conflict, NotFound, ValidationError)


def qr_html(svg: str) -> str:
    """The enrolment QR code as an inline ``<img>`` (a ``data:`` URI: the CSP allows it, no request)."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return (f'<img id="two-factor-qr" alt="QR code for your authenticator app" width="220" height="220" '
            f'src="data:image/svg+xml;base64,{html.escape(data)}">')


def _grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _enrolment(g: Guard, pending: bool) -> None:
    if st.button("Start over with a new secret" if pending else "Set up two-factor sign-in", key="tf_start"):
        with g.context():
            try:
                shown = g.vault.enrol_two_factor(g.session.user)
            except ERRORS as exc:
                st.error(feedback.sentence(exc))
                return
        st.markdown("Scan this QR code with your authenticator app (shown once):")
        st.html(qr_html(shown["qr_svg"]))
        st.caption("Or type this secret into the app:")
        st.code(_grouped(shown["secret"]), language=None)
        pending = True
    if not pending:
        return
    with st.form("tf_confirm", clear_on_submit=True):
        code = st.text_input("First code from the app", key="tf_confirm_code", max_chars=12)
        if not st.form_submit_button("Confirm and turn on"):
            return
    with g.context():
        try:
            codes = g.vault.confirm_two_factor(g.session.user, code)
        except ERRORS as exc:
            st.error(feedback.sentence(exc))
            return
    st.success("Two-factor sign-in is on. Your recovery codes, each usable once, shown only now; keep them safe:")
    st.code("\n".join(codes), language=None)
    st.warning("Every session of yours has ended: log in again, with a code from the app.")
    st.markdown("[Log in](/login)")


def _turn_off(g: Guard, left: int) -> None:
    st.success(f"Two-factor sign-in is on ({left} recovery codes left).")
    with st.form("tf_off", clear_on_submit=True):
        code = st.text_input("A current code (or a recovery code) to turn it off", key="tf_off_code", max_chars=24)
        if not st.form_submit_button("Turn two-factor off (logs out everywhere)"):
            return
    with g.context():
        try:
            g.vault.disable_two_factor(g.session.user, code)
        except (*ERRORS, AccountLocked) as exc:
            st.error(feedback.sentence(exc))
            return
    st.rerun()  # this session ended too


def render(g: Guard) -> None:
    """The two-factor section of one's own Account page."""
    with g.context():
        status = g.vault.two_factor_status(g.session.user)[0]
    if g.session.must_enrol_two_factor:
        st.warning("Your role requires two-factor sign-in: set it up here to use the console.")
    if status["enrolled"]:
        _turn_off(g, status["recovery_codes_left"])
    else:
        _enrolment(g, status["pending"])
