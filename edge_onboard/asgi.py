"""``edge_onboard.asgi:app`` for ASGI servers (and for hypercorn's worker processes):
the app configured from the environment."""

from __future__ import annotations

import logging

from edge_onboard.app import create_app
from edge_onboard.config.hypercorn import quiet_startup_line, release_closed_connections

if not logging.getLogger().handlers:  # a worker process: log as `edge-onboard serve` does
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

release_closed_connections()  # hypercorn's worker processes import this module
quiet_startup_line()
app = create_app()
