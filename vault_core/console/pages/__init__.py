"""The console's page scripts (run by st.navigation from ``console/router.py``)."""
