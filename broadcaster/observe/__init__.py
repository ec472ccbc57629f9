"""Supervision: health checks, broker queue depths, Prometheus metrics and alerts to the admins
(docs/operations.md). Everything here reads the database and the broker; nothing sends a campaign."""
