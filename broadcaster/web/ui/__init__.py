"""The staff UI's pages, one module per area; each route declares its role with ``auth.requires``."""

from __future__ import annotations

from fastapi import APIRouter

from broadcaster.web.ui import (
    admin,
    audit_pages,
    campaign_actions,
    campaign_edit,
    campaign_review,
    campaigns,
    contacts,
    dashboard,
    messages,
    reports,
)

ROUTERS: tuple[APIRouter, ...] = (
    dashboard.router,
    campaigns.router,
    campaign_review.router,
    campaign_actions.router,
    campaign_edit.router,
    contacts.router,
    messages.router,
    reports.router,
    audit_pages.router,
    admin.router,
)
