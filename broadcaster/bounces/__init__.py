"""Mail that comes back to us: the inbound SMTP listener for the bounce domain (DSNs) and the mailto opt-out
address, what it stores, and the listing of what came in (docs/architecture.md, "Bounces")."""
