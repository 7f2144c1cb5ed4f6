"""The trading API: REST and WebSocket over the exchange core (FastAPI)."""
