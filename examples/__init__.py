"""Runnable integration patterns from the seed note (ConfigManager, DatabaseManager, a Streamlit page)."""
