"""HTTP endpoints: ``/v1`` (API key auth) and the operational routes."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.api import pagination
from edge_onboard.api.auth import Principal
from edge_onboard.api.deps import ApiServices, authorized, create, get_services
from edge_onboard.api.openapi import build_openapi
from edge_onboard.core import responses, validation
from edge_onboard.core.errors import invalid
from edge_onboard.core.responses import JSONResponse
from edge_onboard.core.validation import UUID_RE
from edge_onboard.onboarding.links import parse_create
from edge_onboard.onboarding.phones import phone_view
from edge_onboard.storage import LinkFilter, LinkStatus
from edge_onboard.storage.models import VISIBLE_LINK_STATUSES
from edge_onboard.storage.paging import Key
from edge_onboard.webhooks.catalog import EVENT_TYPES
from edge_onboard.webhooks.endpoints import delivery_view, webhook_view

READY_TIMEOUT = 2.0


# Onboarding links


async def create_link(request: Request) -> Response:
    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        params = await parse_create(body, allow_private=services.settings.webhook_allow_private)
        link = await services.links.create(principal.org_id, params, livemode=principal.livemode)
        return services.links.view(link)

    return await create(request, make)


async def list_links(request: Request) -> Response:
    services, principal = await authorized(request)
    params = pagination.parse(request, filters=("status", "externalId"))
    query = request.query_params
    status = query.get("status")
    if status is not None and status not in {s.value for s in VISIBLE_LINK_STATUSES}:
        raise invalid("'status' must be one of pending, completed, expired.", param="status")
    external_id = query.get("externalId")
    if external_id is not None and not 1 <= len(external_id) <= 255:
        raise invalid("'externalId' must be 1-255 characters.", param="externalId")
    flt = LinkFilter(
        status=LinkStatus(status) if status else None,
        external_id=external_id,
        livemode=principal.livemode,
    )
    links = services.links
    return await pagination.list_page(
        request,
        lambda window: links.list(principal.org_id, flt, window),
        _locator(links.storage.get_link, functools.partial(_visible, principal)),
        links.view,
        params,
    )


async def get_link(request: Request) -> Response:
    services, principal = await authorized(request)
    link, memo = await services.links.get_cached(
        principal.org_id, request.path_params["link_id"], livemode=principal.livemode
    )
    # Rendered once per copy of the link in the hot layer, not once per request (one
    # response serves them all: Starlette never changes a response it sends); but a
    # view with a webhook secret in plaintext is never kept.
    response: JSONResponse | None = memo.get("api")
    if response is None:
        response = JSONResponse(orjson.dumps({"data": services.links.view(link)}))
        if not link.webhook_secret_enc:
            memo["api"] = response
    return response


async def delete_link(request: Request) -> Response:
    services, principal = await authorized(request)
    link_id = request.path_params["link_id"]
    await services.links.delete(principal.org_id, link_id, livemode=principal.livemode)
    return responses.single({"id": link_id, "deleted": True})


# Phones


async def list_phones(request: Request) -> Response:
    services, principal = await authorized(request)
    org_id, storage = principal.org_id, services.storage
    return await pagination.list_page(
        request,
        lambda window: storage.list_phones(org_id, window, livemode=principal.livemode),
        _locator(storage.get_phone, functools.partial(_visible, principal)),
        phone_view,
    )


async def get_phone(request: Request) -> Response:
    services, principal = await authorized(request)
    phone = await services.phones.get(
        principal.org_id, request.path_params["phone_id"], livemode=principal.livemode
    )
    return responses.single(phone_view(phone))


async def phone_health(request: Request) -> Response:
    services, principal = await authorized(request)
    report = await services.phones.health(
        principal.org_id, request.path_params["phone_id"], livemode=principal.livemode
    )
    return responses.single(report)


async def send_message(request: Request) -> Response:
    phone_id = request.path_params["phone_id"]

    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        return await services.messages.send(
            principal.org_id, phone_id, body, livemode=principal.livemode
        )

    return await create(request, make)


# Outgoing webhooks


async def create_webhook(request: Request) -> Response:
    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        webhook, secret = await services.webhooks.create(
            principal.org_id, body, livemode=principal.livemode
        )
        return {**webhook_view(webhook), "secret": secret}  # the secret is shown once, here

    return await create(request, make)


async def list_webhooks(request: Request) -> Response:
    services, principal = await authorized(request)
    org_id, storage = principal.org_id, services.storage
    return await pagination.list_page(
        request,
        lambda window: storage.list_webhooks(org_id, window, livemode=principal.livemode),
        _locator(storage.get_webhook, lambda w: _visible(principal, w) and not w.deleted_at),
        webhook_view,
    )


async def get_webhook(request: Request) -> Response:
    services, principal = await authorized(request)
    webhook = await services.webhooks.get(
        principal.org_id, request.path_params["webhook_id"], livemode=principal.livemode
    )
    return responses.single(webhook_view(webhook))


async def update_webhook(request: Request) -> Response:
    services, principal = await authorized(request)
    body = validation.json_object(request, await validation.read_body(request))
    webhook = await services.webhooks.update(
        principal.org_id, request.path_params["webhook_id"], body, livemode=principal.livemode
    )
    return responses.single(webhook_view(webhook))


async def delete_webhook(request: Request) -> Response:
    services, principal = await authorized(request)
    webhook_id = request.path_params["webhook_id"]
    await services.webhooks.delete(principal.org_id, webhook_id, livemode=principal.livemode)
    return responses.single({"id": webhook_id, "deleted": True})


async def list_deliveries(request: Request) -> Response:
    services, principal = await authorized(request)
    webhook = await services.webhooks.get(
        principal.org_id, request.path_params["webhook_id"], livemode=principal.livemode
    )
    storage = services.storage
    return await pagination.list_page(
        request,
        lambda window: storage.list_deliveries(webhook.id, window),
        _locator(storage.get_delivery, lambda d: d.webhook_id == webhook.id),
        delivery_view,
    )


async def retry_delivery(request: Request) -> Response:
    services, principal = await authorized(request)
    await validation.read_body(request)  # no parameters; any body is ignored
    delivery = await services.webhooks.retry(
        principal.org_id, request.path_params["delivery_id"], livemode=principal.livemode
    )
    return responses.single(delivery_view(delivery), status_code=202)


class _Listed(Protocol):
    id: str
    created_at: datetime


class _Owned(Protocol):
    org_id: str
    livemode: bool


def _visible(principal: Principal, found: _Owned) -> bool:
    """Whether the key may see it: its organisation's, of its mode (test or live)."""
    return found.org_id == principal.org_id and found.livemode == principal.livemode


L = TypeVar("L", bound=_Listed)


def _locator(
    get: Callable[[str], Awaitable[L | None]], visible: Callable[[L], bool]
) -> pagination.Locate:
    """A cursor's key: the object's, when this caller may see it (else None: a 400)."""

    async def locate(ident: str) -> Key | None:
        found = await get(ident) if UUID_RE.match(ident) else None
        return (found.created_at, found.id) if found is not None and visible(found) else None

    return locate


async def list_event_types(request: Request) -> Response:
    await authorized(request)
    items = [{"type": name, "description": text} for name, text in EVENT_TYPES.items()]
    return responses.page(items, page=1, limit=len(items), total=len(items))


# Operations


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = get_services(request)
    checks: dict[str, str] = {}

    async def check(name: str, probe: Any) -> None:
        try:
            with anyio.fail_after(READY_TIMEOUT):
                await probe()
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the name says which
            checks[name] = f"error: {type(exc).__name__}"

    await check("storage", services.storage.ping)
    if services.redis is not None:
        await check("redis", services.redis.ping)
    # The delivery loop in this process (if any) failed its last round: Redis answers a
    # PING yet cannot serve the queue (e.g. a cluster addressed as one server), or
    # storage is down. Listed only then, so a ready answer keeps its shape.
    if services.engine.loop_error is not None:
        checks["delivery"] = f"error: {type(services.engine.loop_error).__name__}"
    body: dict[str, Any] = {"checks": checks}
    if services.region is not None and services.region.region.name is not None:
        # Regions (core/regions.py): this one's role, its replicas' lag, and whether
        # its Redis replica answers (a check like the others).
        body["region"], replica = await services.region.report(READY_TIMEOUT)
        if replica is not None:
            checks["redisReplica"] = replica
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", **body},
        status_code=200 if ready else 503,
    )


async def openapi(request: Request) -> Response:
    services = get_services(request)
    return Response(
        orjson.dumps(build_openapi(services.settings.public_url)),
        media_type="application/json",
    )


# Phone verification (numbers that finished Embedded Signup unverified)


async def request_verification_code(request: Request) -> Response:
    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        phone_id = request.path_params["phone_id"]
        return phone_view(
            await services.verification.request_code(
                principal.org_id, phone_id, body, livemode=principal.livemode
            )
        )

    return await create(request, make, status_code=200)


async def verify_phone(request: Request) -> Response:
    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        phone_id = request.path_params["phone_id"]
        phone = await services.verification.verify(
            principal.org_id, phone_id, body, livemode=principal.livemode
        )
        return phone_view(phone)

    return await create(request, make, status_code=200)


# WABAs


async def list_wabas(request: Request) -> Response:
    services, principal = await authorized(request)
    wabas, org_id = services.wabas, principal.org_id
    return await pagination.list_page(
        request,
        lambda window: wabas.list(org_id, window, livemode=principal.livemode),
        functools.partial(wabas.locate, org_id, livemode=principal.livemode),
        lambda view: view,
    )


async def get_waba(request: Request) -> Response:
    services, principal = await authorized(request)
    waba = await services.wabas.get(
        principal.org_id, request.path_params["waba_id"], livemode=principal.livemode
    )
    return responses.single(await services.wabas.view(waba))


async def sync_waba_phones(request: Request) -> Response:
    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        validation.reject_unknown(body, ())
        return await services.wabas.sync(
            principal.org_id, request.path_params["waba_id"], livemode=principal.livemode
        )

    return await create(request, make, status_code=200)


# Outgoing webhooks: secret rotation


async def rotate_webhook_secret(request: Request) -> Response:
    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        webhook, secret = await services.webhooks.rotate_secret(
            principal.org_id, request.path_params["webhook_id"], body, livemode=principal.livemode
        )
        return {**webhook_view(webhook), "secret": secret}  # the new secret is shown once, here

    return await create(request, make, status_code=200)


async def recover_link(request: Request) -> Response:
    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        validation.reject_unknown(body, ())
        assert services.recovery is not None
        link = await services.recovery.recover_link(
            principal.org_id, request.path_params["link_id"], livemode=principal.livemode
        )
        return services.links.view(link)

    return await create(request, make, status_code=200)
