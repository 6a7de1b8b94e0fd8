"""Every event type has its own payload schema in the OpenAPI webhooks, and is listed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs  # schemathesis's validator
import pytest

from edge_onboard.api.openapi import build_openapi
from edge_onboard.api.openapi.event_schemas import event_schema, schema_name
from edge_onboard.onboarding.phones import phone_view
from edge_onboard.storage import Phone, PhonePlatform, PhoneStatus
from edge_onboard.webhooks.catalog import EVENT_TYPES
from tests.conftest import Api


def schemas(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schemas(value, f"{path}/{index}")


def body(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "event": event_type,
        "timestamp": "2026-11-25T12:00:00.000Z",
        "organizationId": str(uuid.uuid4()),
        "livemode": True,
        "data": data,
    }


def valid(event_type: str, data: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(event_schema(event_type), validate_formats=True)
    validator.validate(body(event_type, data))


def test_every_event_type_has_its_own_payload_schema() -> None:
    spec = build_openapi("https://onboard.test")
    webhooks, components = spec["webhooks"], spec["components"]["schemas"]
    assert list(webhooks) == list(EVENT_TYPES)
    for name, item in webhooks.items():
        # Each payload is a named schema (SDKs make a model of it), its data another.
        ref = item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{schema_name(name)}"
        schema = components[schema_name(name)]
        assert schema["properties"]["event"] == {"type": "string", "const": name}
        assert schema["properties"]["data"] == {"$ref": f"{ref}Data"}
        data = components[f"{schema_name(name)}Data"]
        assert data == event_schema(name)["properties"]["data"]
        assert data["type"] == "object" and data["properties"], name
        assert data["required"] == list(data["properties"]), name
        # No bare object: only raw (Meta's own object, whatever Meta adds) is left open;
        # a map (metadata) says what its values are.
        for path, node in schemas(data):
            if node.get("type") == "object" and not {"properties", "additionalProperties"} & set(
                node
            ):
                assert path.endswith("/raw") and node.get("description"), (name, path)


def connected_phone(**extra: Any) -> Phone:
    """A connected, registered phone record, as the tests of views and schemas use."""
    now = datetime(2026, 11, 25, tzinfo=UTC)
    return Phone(
        id=str(uuid.uuid4()),
        org_id=str(uuid.uuid4()),
        waba_id=str(uuid.uuid4()),
        meta_waba_id="102290129340398",
        meta_phone_number_id="106540352242922",
        status=PhoneStatus.CONNECTED,
        is_registered=True,
        onboarding_link_id=None,
        created_at=now,
        updated_at=now,
        phone_number="+15550783881",
        **extra,
    )


def test_phone_number_updated_carries_the_phone_view() -> None:
    phone = connected_phone(
        platform=PhonePlatform.BUSINESS_APP,
        coexistence={"stateSync": "requested", "historySync": "failed"},
    )
    view = phone_view(phone)
    properties = event_schema("phone_number.updated")["properties"]["data"]["properties"]
    assert set(properties) == {*view, "previousStatus"}
    valid("phone_number.updated", {**view, "previousStatus": "pending_verification"})


def test_signup_events_match_their_schemas() -> None:
    link, waba = str(uuid.uuid4()), str(uuid.uuid4())
    valid(
        "waba.connected",
        {"onboardingLinkId": link, "externalId": None, "wabaId": waba, "metaWabaId": "1"},
    )
    connected = {
        "onboardingLinkId": None,  # a number a WABA sync found later
        "externalId": "crm-42",
        "phoneNumberId": str(uuid.uuid4()),
        "phoneNumber": "+15550783881",
        "wabaId": waba,
        "metaWabaId": "1",
        "isPhoneRegistered": False,
        "status": "registration_failed",
        "platform": "cloud_api",
    }
    valid("phone_number.connected", connected)
    with pytest.raises(jsonschema_rs.ValidationError):
        valid("phone_number.connected", {**connected, "phoneNumberId": "not-a-uuid"})


@pytest.mark.anyio
async def test_event_types_are_listed_with_their_descriptions(api: Api) -> None:
    response = await api.client.get("/v1/event-types", headers=await api.key())
    assert response.status_code == 200
    listed = {item["type"]: item["description"] for item in response.json()["data"]}
    assert listed == EVENT_TYPES
    assert {"message.reaction", "message.echo", "contact.changed", "phone_number.error"} <= set(
        listed
    )
