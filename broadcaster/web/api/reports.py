"""The API's reports operations (to be written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
