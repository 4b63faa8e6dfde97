"""Console support code: login, sessions, request headers, page helpers (no SQL)."""
