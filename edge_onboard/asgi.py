"""``edge_onboard.asgi:app`` for ASGI servers run on their own (``edge-onboard serve``
builds its app in edge_onboard/serving.py): the app configured from the environment."""

from __future__ import annotations

import logging

from edge_onboard.app import create_app
from edge_onboard.config import Settings
from edge_onboard.config.hypercorn import quiet_startup_line, release_closed_connections
from edge_onboard.core import logs

settings = Settings.from_env()
if not logging.getLogger().handlers:  # a worker process: log as `edge-onboard serve` does
    logs.configure(settings.log_level, settings.log_format)
else:
    logs.install_redaction()  # an embedding server's own handlers: redact all the same

release_closed_connections()  # for when the server is hypercorn
quiet_startup_line()
app = create_app(settings)
