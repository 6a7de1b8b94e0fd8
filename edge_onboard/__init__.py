"""edge-onboard: hosted WhatsApp Embedded Signup onboarding as an ASGI service."""

from __future__ import annotations

from edge_onboard.app import create_app

__all__ = ["create_app"]
