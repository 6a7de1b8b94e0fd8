"""hypercorn settings for ``edge-onboard serve``."""

from __future__ import annotations

import logging

from hypercorn.config import Config

from edge_onboard.config.settings import Settings


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.keep_alive_timeout = 75  # above common load balancers' idle timeouts
    config.graceful_timeout = 20
    config.accesslog = None  # request logging is ours (with request ids), not hypercorn's
    config.errorlog = logging.getLogger("hypercorn.error")  # one format, through ours
    config.server_names = []
    config.include_server_header = False
    config.worker_class = "asyncio"
    config.workers = settings.workers
    # With several workers hypercorn imports the app in each process from here.
    config.application_path = "edge_onboard.asgi:app"
    return config
