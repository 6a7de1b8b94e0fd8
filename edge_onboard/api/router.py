"""Every route of the customer's API, in one table: ``/v1`` and the operational routes."""

from __future__ import annotations

from starlette.routing import Route

from edge_onboard.api import events, media, organization, profile, sandbox_controls, test_helpers
from edge_onboard.api import routes as api
from edge_onboard.core.routing import HotRoutes, resource

# Served by the middleware before the router (the API's hottest read).
HOT: HotRoutes = {"/v1/onboarding-links/": (api.get_link, "link_id")}


def routes() -> list[Route]:
    """The hot ones first: the router tries routes in order."""
    return [
        resource("/v1/onboarding-links/{link_id}", GET=api.get_link, DELETE=api.delete_link),
        resource("/v1/onboarding-links", GET=api.list_links, POST=api.create_link),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/v1/event-types", api.list_event_types, methods=["GET"]),
        Route("/v1/phones", api.list_phones, methods=["GET"]),
        Route("/v1/phones/{phone_id}", api.get_phone, methods=["GET"]),
        Route("/v1/phones/{phone_id}/health", api.phone_health, methods=["GET"]),
        Route("/v1/phones/{phone_id}/media/{mediaId}", media.media_file, methods=["GET"]),
        Route(
            "/v1/phones/{phone_id}/verification-code",
            api.request_verification_code,
            methods=["POST"],
        ),
        Route("/v1/phones/{phone_id}/verify", api.verify_phone, methods=["POST"]),
        resource(
            "/v1/phones/{phone_id}/profile", GET=profile.get_profile, PATCH=profile.update_profile
        ),
        Route("/v1/phones/{phone_id}/profile/photo", profile.put_photo, methods=["PUT"]),
        Route("/v1/wabas", api.list_wabas, methods=["GET"]),
        Route("/v1/wabas/{waba_id}", api.get_waba, methods=["GET"]),
        Route("/v1/wabas/{waba_id}/phones/sync", api.sync_waba_phones, methods=["POST"]),
        Route("/v1/onboarding-links/{link_id}/recover", api.recover_link, methods=["POST"]),
        Route("/v1/phones/{phone_id}/messages", api.send_message, methods=["POST"]),
        resource("/v1/outgoing-webhooks", GET=api.list_webhooks, POST=api.create_webhook),
        resource(
            "/v1/outgoing-webhooks/{webhook_id}",
            GET=api.get_webhook,
            PATCH=api.update_webhook,
            DELETE=api.delete_webhook,
        ),
        Route(
            "/v1/outgoing-webhooks/{webhook_id}/deliveries", api.list_deliveries, methods=["GET"]
        ),
        Route(
            "/v1/outgoing-webhooks/{webhook_id}/rotate-secret",
            api.rotate_webhook_secret,
            methods=["POST"],
        ),
        Route("/v1/webhook-deliveries/{delivery_id}/retry", api.retry_delivery, methods=["POST"]),
        Route(
            "/v1/outgoing-webhooks/{webhook_id}/recover",
            events.recover_webhook,
            methods=["POST"],
        ),
        Route("/v1/events", events.list_events, methods=["GET"]),
        Route("/v1/events/{event_id}", events.get_event, methods=["GET"]),
        # The organisation's branding for the hosted page, and what the page links to.
        resource(
            "/v1/organization",
            GET=organization.get_organization,
            PATCH=organization.update_organization,
        ),
        resource(
            "/v1/organization/logo",
            PUT=organization.put_logo,
            DELETE=organization.delete_logo,
        ),
        # The fake Meta's test controls: the owner's test key, never anonymous.
        Route("/_sandbox/inbound", sandbox_controls.inbound, methods=["POST"]),
        Route("/_sandbox/remove-access", sandbox_controls.remove_access, methods=["POST"]),
        Route("/_sandbox/profile-posts", sandbox_controls.profile_posts, methods=["POST"]),
        *test_helpers.routes(),
    ]
