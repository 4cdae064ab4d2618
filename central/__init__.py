"""The central attendance service: HTTP API, storage (SQLite or PostgreSQL), kiosk tokens."""
