"""The admin console: an st.App (app.py, asgi.py) with routes, middleware, the router, pages and views (no SQL)."""
