"""Meta's side assembled: each mode's Meta app and Graph client, and the fake Meta's
outgoing webhooks pumped back into the service."""

from __future__ import annotations

import anyio
import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp

from edge_onboard.config import Settings
from edge_onboard.meta.graph import GraphClient
from edge_onboard.meta.modes import MetaApp, MetaModes
from edge_onboard.meta.sandbox import APP_ID as SANDBOX_APP_ID
from edge_onboard.meta.sandbox import CONFIG_ID as SANDBOX_CONFIG_ID
from edge_onboard.meta.sandbox import SandboxMeta


def sandbox_graph(settings: Settings, sandbox: SandboxMeta) -> GraphClient:
    """A Graph client on the built-in fake Meta, in process (no network)."""
    return GraphClient(
        base_url="http://sandbox.invalid/_sandbox/graph",
        version=settings.meta_graph_version,
        app_id=SANDBOX_APP_ID,
        app_secret=sandbox.app_secret,
        transport=httpx.ASGITransport(app=Starlette(routes=sandbox.routes())),
    )


def meta_modes(settings: Settings, sandbox: SandboxMeta) -> MetaModes:
    """Each mode's Meta app and Graph client: test mode always the fake; live mode the
    configured app, or none, or (EDGE_SANDBOX) the fake too."""
    fake_app = MetaApp(SANDBOX_APP_ID, SANDBOX_CONFIG_ID, sandbox.app_secret)
    fake_graph = sandbox_graph(settings, sandbox)
    if settings.sandbox:
        return MetaModes(fake_app, fake_graph, fake_app, fake_graph, everything_sandboxed=True)
    if not settings.meta_configured:
        return MetaModes(None, None, fake_app, fake_graph)
    assert settings.meta_app_id and settings.meta_app_secret and settings.meta_config_id
    graph = GraphClient(
        base_url=settings.meta_graph_url,
        version=settings.meta_graph_version,
        app_id=settings.meta_app_id,
        app_secret=settings.meta_app_secret.reveal(),
    )
    app = MetaApp(settings.meta_app_id, settings.meta_config_id, settings.meta_app_secret.reveal())
    return MetaModes(app, graph, fake_app, fake_graph)


async def close_modes(meta: MetaModes) -> None:
    await meta.test_graph.aclose()
    if meta.live_graph is not None and meta.live_graph is not meta.test_graph:
        await meta.live_graph.aclose()


async def pump_sandbox(sandbox: SandboxMeta, app: ASGIApp) -> None:
    """The fake Meta's webhooks (message statuses, inbound messages) reach the service
    through an in-process transport: the sandbox needs no network, even to itself."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.invalid") as client:
        while True:
            await sandbox.flush(client)
            await anyio.sleep(0.2)
