"""An unmodified Streamlit app: its database URL comes from st.secrets, as Streamlit's docs show."""

import streamlit as st

conn = st.connection("sql")
df = conn.query("SELECT label FROM things ORDER BY label", ttl=0)
st.text("labels:" + ",".join(df["label"]))
