"""The project's web application (FastAPI): today the RFC 8058 one-click unsubscribe; ``broadcaster serve`` runs it."""
