"""Integrations with application frameworks (Streamlit's ``st.connection`` and ``st.App`` secrets).

The ``st.secrets`` replacement itself stays at ``vault_core.streamlit``.
"""
