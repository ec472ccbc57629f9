"""The project's web application (FastAPI, ``broadcaster.web.app``): the staff UI, the REST API under /api/v1,
the one-click unsubscribe and the city app's consent endpoint; ``broadcaster serve`` runs it."""
