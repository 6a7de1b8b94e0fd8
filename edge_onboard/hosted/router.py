"""Every public route that takes no API key, in one table: the hosted page and its
callbacks, assets, the front door, Meta's webhooks and the fake Meta's public face."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge_onboard.core.errors import ApiError
from edge_onboard.core.routing import Endpoint, HotRoutes, resource
from edge_onboard.hosted import assets, front, meta_webhook, updates, verification
from edge_onboard.hosted import routes as hosted
from edge_onboard.hosted.deps import get_services, limit_public
from edge_onboard.meta.sandbox import SandboxMeta

# Served by the middleware before the router (the busiest page).
HOT: HotRoutes = {"/signup/": (hosted.signup_page, "link_id")}


def routes(sandbox: SandboxMeta) -> list[Route]:
    """The signup page first: the router tries routes in order."""
    return [
        Route("/signup/{link_id}", hosted.signup_page, methods=["GET"]),
        Route("/signup/{link_id}/callback", hosted.signup_callback, methods=["POST"]),
        Route("/signup/{link_id}/session", hosted.signup_session, methods=["POST"]),
        Route("/signup/{link_id}/state", hosted.signup_state, methods=["GET"]),
        Route("/signup/{link_id}/verification/code", verification.send_code, methods=["POST"]),
        Route("/signup/{link_id}/verification/verify", verification.check_code, methods=["POST"]),
        Route("/signup/{link_id}/update", updates.start, methods=["POST"]),
        Route("/signup/{link_id}/update/finish", updates.finish, methods=["POST"]),
        Route("/", front.root, methods=["GET"]),
        Route("/static/{name}", assets.static_asset, methods=["GET"]),
        resource("/webhook/meta", GET=meta_webhook.handshake, POST=meta_webhook.receive),
        resource(
            "/webhook/phone/{phone_id}",
            GET=hosted.phone_webhook_handshake,
            POST=hosted.phone_webhook,
        ),
        Route("/brand/{org_id}/{digest}", front.logo_file, methods=["GET"]),
        Route("/favicon.ico", assets.favicon, methods=["GET"]),
        # Mounted on every deployment: a test link's popup is the fake's dialog.
        *_sandbox_routes(sandbox),
    ]


def _sandbox_routes(sandbox: SandboxMeta) -> list[Route]:
    """The fake's routes as the public reaches them. It runs on live deployments too (for
    test links), so every request to it, reads too, counts against the client address's
    budget of public requests (EDGE_RATE_LIMIT_PUBLIC), as the hosted pages do."""
    routes: list[Route] = []
    for route in sandbox.routes():

        async def limited(request: Request, endpoint: Endpoint = route.endpoint) -> Response:
            try:
                await limit_public(request, get_services(request))
            except ApiError as exc:
                return exc.response()
            return await endpoint(request)

        routes.append(Route(route.path, limited, methods=sorted(route.methods or ())))
    return routes
