"""Test helpers, ``POST /v1/test-helpers/…``: cause in test mode what end-users and Meta
would, through the built-in fake of Meta, so the real paths run.

- ``onboarding-links/{id}/complete``: the end-user finishes the fake Meta's signup for a
  test link (the page's callback, with Meta's ids and code), ending as ``scenario`` says.
- ``phones/{id}/webhooks``: Meta sends any webhook change (``field`` and ``value``) about a
  test phone, signed with the fake app's secret, to where Meta would (the number's
  callback URL, or the app's): any field, including ones this code does not know.
- ``phones/{id}/messages`` and ``phones/{id}/statuses``: the same, typed: a customer's
  message of a type, or the status of a message the phone sent.

Test keys only: a live key gets 400 ``test_mode_only``, and the objects are looked up in
test mode, so a helper never reaches a live object. Webhooks are queued and posted within
a fraction of a second (the app's sandbox pump), like Meta's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge_onboard.api.auth import Principal
from edge_onboard.api.deps import ApiServices, create
from edge_onboard.core import validation as v
from edge_onboard.core.errors import ApiError, invalid
from edge_onboard.meta.sandbox import samples

if TYPE_CHECKING:
    from edge_onboard.meta.sandbox import SandboxMeta
    from edge_onboard.onboarding.completion import CompletionService
    from edge_onboard.onboarding.updates import UpdateService

_FIELD_MAX = 100
_SENDER_MAX = 20


class HelperServices(ApiServices, Protocol):
    """What the helpers use beyond the API's services: the fake Meta and completion."""

    @property
    def sandbox(self) -> SandboxMeta: ...
    @property
    def completion(self) -> CompletionService: ...
    @property
    def updates(self) -> UpdateService | None: ...


def _test_only(principal: Principal) -> None:
    if principal.livemode:
        raise ApiError(
            400,
            "test_mode_only",
            "Test helpers work with test keys (sk_test_…) only; this request used a live key.",
        )


async def complete_link(request: Request) -> Response:
    """The end-user finishes the fake Meta's signup on a test link."""

    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        _test_only(principal)
        v.reject_unknown(body, {"scenario"})
        scenario = _choice(body, "scenario", samples.COMPLETE_SCENARIOS, default="ok")
        helpers = cast("HelperServices", services)
        link = await services.links.get(
            principal.org_id, request.path_params["link_id"], livemode=False
        )
        if link.type == "update":
            return await _complete_update(helpers, link, scenario)
        async with helpers.sandbox._synced():
            session = helpers.sandbox.finish(scenario)
        await _callback(helpers, link.id, session)
        return services.links.view(
            await services.links.get(principal.org_id, link.id, livemode=False)
        )

    return await create(request, make, status_code=200)


async def _callback(helpers: HelperServices, link_id: str, session: dict[str, Any]) -> None:
    """What the page posts to its callback for the fake popup's ``session``; its refusal
    in the API's error shape."""
    data = session["data"]
    report = {
        "code": session["code"],
        "event": session["event"],
        "wabaId": data["waba_id"],
        "businessId": data.get("business_id"),
        "phoneNumberId": data.get("phone_number_id"),
    }
    outcome = await helpers.completion.handle(link_id, report)
    if outcome.status_code >= 400:
        error = outcome.body["error"]
        raise ApiError(outcome.status_code, error["code"], error["message"])


async def _complete_update(helpers: HelperServices, link: Any, scenario: str) -> dict[str, Any]:
    """An update link: the business signs up again with its own account when the number
    needs it (access lost, no number yet), then finishes the page without changes."""
    updates = helpers.updates
    assert updates is not None
    plan = await updates.plan(link)
    if plan["steps"][0] in ("reconnect", "add_number"):
        waba = await helpers.storage.get_waba(link.waba_id or "")
        assert waba is not None  # an update link's WABA is never deleted
        async with helpers.sandbox._synced(ids=[waba.meta_waba_id]):
            session = helpers.sandbox.finish_existing(
                scenario, waba.meta_waba_id, waba.meta_business_id or ""
            )
        if session is None:
            raise ApiError(409, "sandbox_account_unknown", "The fake Meta does not know this WABA.")
        await _callback(helpers, link.id, session)
        link = await helpers.links.get(link.org_id, link.id, livemode=False)
    await updates.finish(link, {})
    return helpers.links.view(await helpers.links.get(link.org_id, link.id, livemode=False))


async def phone_webhook(request: Request) -> Response:
    """Meta sends any webhook change about a test phone."""

    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        _test_only(principal)
        v.reject_unknown(body, {"field", "value"})
        field = v.string(body, "field", min_length=1, max_length=_FIELD_MAX, required=True)
        value = body.get("value")
        if not isinstance(value, dict):
            raise invalid("'value' must be an object: Meta's change value.", param="value")
        info = value.get("waba_info")
        phone = await _phone(services, principal, request)
        if isinstance(info, dict) and info.get("waba_id", phone.meta_waba_id) != phone.meta_waba_id:
            # The fake Meta speaks for this phone's WABA only, never another's.
            raise invalid(
                "'value.waba_info.waba_id' must be this phone's WABA (its metaWabaId).",
                param="value",
            )
        return await _deliver(services, principal, request, str(field), value, {})

    return await create(request, make, status_code=202)


async def phone_message(request: Request) -> Response:
    """A customer sends a test phone a message of a type."""

    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        _test_only(principal)
        v.reject_unknown(body, {"type", "from", "text", "messageId"})
        kind = _choice(body, "type", samples.MESSAGE_TYPES, default="text")
        sender = _sender(body)
        text = v.string(body, "text", max_length=4096) or "Hello from the sandbox"
        about = v.string(body, "messageId", min_length=1, max_length=256)
        phone = await _phone(services, principal, request)
        media_id = None
        if kind in samples.MEDIA_TYPES:
            helpers = cast("HelperServices", services)
            async with helpers.sandbox._synced(ids=[phone.meta_phone_number_id]):
                media_id = helpers.sandbox.add_media(
                    phone.meta_phone_number_id,
                    b"sandbox media\n",
                    mime_type=samples.MEDIA_TYPES[kind].split(";")[0],
                )
        message_id, value = samples.message_value(
            kind, sender=sender, text=text, media_id=media_id, about=about
        )
        extra = {"type": kind, "metaMessageId": message_id}
        return await _deliver(services, principal, request, "messages", value, extra)

    return await create(request, make, status_code=202)


async def phone_status(request: Request) -> Response:
    """Meta reports the status of a message a test phone sent."""

    async def make(
        services: ApiServices, principal: Principal, body: dict[str, Any]
    ) -> dict[str, Any]:
        _test_only(principal)
        v.reject_unknown(body, {"status", "messageId", "to"})
        status = _choice(body, "status", samples.STATUSES, default="delivered")
        message_id = v.string(body, "messageId", min_length=1, max_length=256)
        message_id = message_id or samples.new_message_id()
        value = samples.status_value(status, message_id, _sender(body, "to"))
        extra = {"status": status, "metaMessageId": message_id}
        return await _deliver(services, principal, request, "messages", value, extra)

    return await create(request, make, status_code=202)


async def _phone(services: ApiServices, principal: Principal, request: Request) -> Any:
    return await services.phones.get(
        principal.org_id, request.path_params["phone_id"], livemode=False
    )


async def _deliver(
    services: ApiServices,
    principal: Principal,
    request: Request,
    field: str,
    value: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    phone = await _phone(services, principal, request)
    sandbox = cast("HelperServices", services).sandbox
    async with sandbox._synced(ids=[phone.meta_phone_number_id]):
        sent_to = sandbox.deliver(phone.meta_phone_number_id, field, value)
    if sent_to is None:
        # A test phone the fake no longer knows (its state expired): nothing can reach it.
        raise ApiError(
            409,
            "phone_unknown_to_sandbox",
            "The fake Meta no longer knows this test phone; connect a new one.",
        )
    return {"phoneNumberId": phone.id, "field": field, "sentTo": sent_to, **extra}


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], *, default: str) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise invalid(f"'{name}' must be one of: {', '.join(allowed)}.", param=name)
    return str(value)


def _sender(body: dict[str, Any], name: str = "from") -> str:
    value = v.string(body, name, min_length=1, max_length=_SENDER_MAX)
    if value is None:
        return samples.DEFAULT_SENDER
    if not v.ascii_digits(value):
        raise invalid(f"'{name}' must be a WhatsApp id: digits only.", param=name)
    return value


def routes() -> list[Route]:
    """The helpers' routes (under /v1/test-helpers)."""
    base = "/v1/test-helpers"
    return [
        Route(f"{base}/onboarding-links/{{link_id}}/complete", complete_link, methods=["POST"]),
        Route(f"{base}/phones/{{phone_id}}/webhooks", phone_webhook, methods=["POST"]),
        Route(f"{base}/phones/{{phone_id}}/messages", phone_message, methods=["POST"]),
        Route(f"{base}/phones/{{phone_id}}/statuses", phone_status, methods=["POST"]),
    ]
