"""Supervision: health checks, broker queue depths, Prometheus metrics and alerts to the admins
(docs/supervision.md). Everything here reads the database and the broker; nothing sends a campaign."""
