"""The project's web application (FastAPI): today the RFC 8058 one-click unsubscribe and the city app's signed
withdrawals; ``broadcaster serve`` runs it."""
