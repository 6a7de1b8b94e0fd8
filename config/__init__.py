"""Settings loading and server configuration for edge-onboard."""

from __future__ import annotations

from edge_onboard.config.settings import ConfigError, Secret, Settings

__all__ = ["ConfigError", "Secret", "Settings"]
