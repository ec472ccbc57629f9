"""The dashboard: the campaigns at a glance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from broadcaster.web.auth import Viewer, requires
from broadcaster.web.templating import render

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, viewer: Annotated[Viewer, Depends(requires("read"))]) -> HTMLResponse:
    return render(request, "dashboard.html")
