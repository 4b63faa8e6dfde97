"""The Health page: figures and plotly charts, refreshed by a fragment."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from .auth import Guard

REFRESH_SECONDS = 30


def _figures(g: Guard) -> None:
    with g.context():  # a fragment rerun skips the page body: enter the context here
        health = g.vault.get_vault_health()
        counts = g.vault.audit_counts(30)
    c = st.columns(5)
    c[0].metric("Secrets", health.get("total_secrets", 0))
    c[1].metric("Expiring in 30 days", health.get("expiring_soon", 0))
    c[2].metric("Expired", health.get("expired", 0))
    c[3].metric("Rotation due", health.get("rotation_due", 0))
    c[4].metric("Audit rows", health.get("audit_rows", 0))
    left, right = st.columns(2)
    by_env = pd.DataFrame(sorted(health.get("by_environment", {}).items()), columns=["environment", "secrets"])
    left.plotly_chart(px.bar(by_env, x="environment", y="secrets", title="Secrets by environment"),
                      key="h_env")
    by_type = pd.DataFrame(sorted(health.get("by_type", {}).items()), columns=["type", "secrets"])
    right.plotly_chart(px.pie(by_type, names="type", values="secrets", title="Secrets by type"), key="h_type")
    daily = pd.DataFrame(counts, columns=["day", "operation", "outcome", "count"])
    if not daily.empty:
        daily["date"] = pd.to_datetime(daily["day"], unit="D")
        st.plotly_chart(px.bar(daily, x="date", y="count", color="outcome", title="Audited operations per day",
                               hover_data=["operation"]), key="h_daily")
    terms = pd.DataFrame(health.get("key_terms", []))
    if not terms.empty:
        st.caption("Key terms")
        st.dataframe(terms, hide_index=True)
    if health.get("last_audit_verify"):
        st.caption("Last audit verification")
        st.json(health["last_audit_verify"])


def render(g: Guard) -> None:
    st.title("Health")
    st.fragment(run_every=REFRESH_SECONDS)(_figures)(g)
