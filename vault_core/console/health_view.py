"""The Health page: figures and plotly charts, refreshed by a fragment.

Charts are built with ``plotly.graph_objects`` (about 1 ms a figure; a
``plotly.express`` figure costs ~30 ms, most of the page's run). Figures are
kept in this session's state under a signature of the counts they show, so a
fragment refresh whose counts did not change builds nothing again. They hold
counts only, never a value.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from . import fmt, overview_view
from .auth import Guard

REFRESH_SECONDS = 30
FIGURES = "_health_figures"  # session state: (signature, {key: figure})
OUTCOME_COLOURS = {"allowed": "#2e7d32", "denied": "#c62828", "failed": "#ef6c00"}


def _bar(counts: dict[str, int], title: str) -> go.Figure:
    items = sorted(counts.items())
    fig = go.Figure(go.Bar(x=[k for k, _ in items], y=[v for _, v in items], name="secrets"))
    return fig.update_layout(title=title, xaxis_title="Environment", yaxis_title="Secrets")


def _pie(counts: dict[str, int], title: str) -> go.Figure:
    items = sorted(counts.items())
    fig = go.Figure(go.Pie(labels=[k for k, _ in items], values=[v for _, v in items], sort=False))
    return fig.update_layout(title=title)


def _daily(counts: list[dict[str, Any]]) -> go.Figure | None:
    """Stacked bars per day and outcome; the hover lists the operations behind each bar."""
    df = pd.DataFrame(counts, columns=["day", "operation", "outcome", "count"])
    if df.empty:
        return None
    df["date"] = pd.to_datetime(df["day"], unit="D")
    df = df.sort_values(["date", "operation"])
    df["line"] = df["operation"].astype(str) + ": " + df["count"].astype(str)
    fig = go.Figure()
    for outcome, part in df.groupby("outcome", sort=True):
        per_day = part.groupby("date", sort=True).agg(count=("count", "sum"), detail=("line", "<br>".join))
        fig.add_trace(go.Bar(x=per_day.index, y=per_day["count"], name=str(outcome), hovertext=per_day["detail"],
                             hovertemplate="%{x|%Y-%m-%d}: %{y}<br>%{hovertext}<extra>" + str(outcome) + "</extra>",
                             marker_color=OUTCOME_COLOURS.get(str(outcome))))
    # at least the 30 days the counts cover, so one day of data is one bar among thirty, not a wall
    last = df["date"].max()
    first = min(df["date"].min(), last - pd.Timedelta(days=29))
    fig.update_xaxes(range=[first - pd.Timedelta(hours=12), last + pd.Timedelta(hours=12)], tickformat="%b %d")
    return fig.update_layout(title="Audited operations per day", barmode="stack", xaxis_title="Day",
                             yaxis_title="Operations")


def verification(report: dict[str, Any] | None) -> str:
    """The last chain verification of this process, as a sentence."""
    if not report:
        return "Not verified since this console started: use Verify the hash chain on the Audit page."
    if report.get("ok"):
        return (f"Intact at the last verification: {report['rows_checked']} rows checked, "
                f"head at row {report['head_seq']}.")
    return (f"Broken at the last verification: the first bad row is {report.get('first_bad_seq')}. "
            f"{report.get('problem', '')}").strip()


def figures(health: dict[str, Any], counts: list[dict[str, Any]]) -> dict[str, go.Figure]:
    """The page's charts, rebuilt only when the counts they show changed since this session's last run."""
    signature = repr((sorted(health.get("by_environment", {}).items()), sorted(health.get("by_type", {}).items()),
                      [tuple(sorted(c.items())) for c in counts]))
    cached = st.session_state.get(FIGURES)
    if cached and cached[0] == signature:
        return cached[1]
    figs = {"h_env": _bar(health.get("by_environment", {}), "Secrets by environment"),
            "h_type": _pie(health.get("by_type", {}), "Secrets by type")}
    daily = _daily(counts)
    if daily is not None:
        figs["h_daily"] = daily
    st.session_state[FIGURES] = (signature, figs)
    return figs


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
    figs = figures(health, counts)
    left, right = st.columns(2)
    left.plotly_chart(figs["h_env"], key="h_env")
    right.plotly_chart(figs["h_type"], key="h_type")
    if "h_daily" in figs:
        st.plotly_chart(figs["h_daily"], key="h_daily")
    terms = health.get("key_terms") or []
    if terms:
        st.caption("Key terms")
        st.dataframe(pd.DataFrame([{"Term": t["term"], "Created": t["created_at"],
                                    "Age": fmt.duration(t["age_days"] * 86400), "Values encrypted": t["encryptions"]}
                                   for t in terms]),
                     hide_index=True, column_config={"Created": fmt.date_column("Created")})
    st.caption("Audit chain")
    st.text(verification(health.get("last_audit_verify")))
    _devices(health.get("audit_devices") or [])


def device_rows(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The audit devices as the table shows them: where, how far behind, since when failing."""
    return [{"Device": d["name"], "Kind": d["kind"], "Format": d["format"], "Required": d["required"],
             "Delivered up to row": d["delivered_seq"], "Rows behind": d["lag_rows"],
             "Behind": fmt.duration(d["lag_seconds"]) if d["lag_rows"] else "caught up",
             "Failing since": d["failing_since"], "Last error": d["last_error"] or ""} for d in devices]


def _devices(devices: list[dict[str, Any]]) -> None:
    st.caption("Audit devices")
    if not devices:
        st.text("No audit device: add one with `vault-console audit devices add`.")
        return
    for d in devices:
        if d["refusing"]:
            st.error(f"The required audit device {d['name']} is {d['lag_rows']} row(s) behind: "
                     "the vault refuses operations until it recovers.")
    st.dataframe(pd.DataFrame(device_rows(devices)), hide_index=True, key="h_devices",
                 column_config={"Failing since": fmt.date_column("Failing since"),
                                "Required": st.column_config.CheckboxColumn("Required")})


def render(g: Guard) -> None:
    st.title("Health")
    st.fragment(run_every=REFRESH_SECONDS)(_figures)(g)
    overview_view.render(g)
