"""The staff UI's pages, one module per area; each route declares its role with ``auth.requires``."""

from __future__ import annotations

from fastapi import APIRouter

from broadcaster.web.ui import (
    admin,
    admin_keys,
    audit_pages,
    campaign_actions,
    campaign_edit,
    campaign_review,
    campaigns,
    contact_person,
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
    contact_person.router,
    messages.router,
    reports.router,
    audit_pages.router,
    admin.router,
    admin_keys.router,
)
