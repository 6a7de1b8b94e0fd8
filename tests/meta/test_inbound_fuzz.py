"""Meta's signed webhooks of any JSON shape: never an error, always 200, one warning."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import bson
import httpx
import jsonschema_rs  # schemathesis's validator
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_onboard.api.auth import create_key
from edge_onboard.api.openapi.event_schemas import event_schema
from edge_onboard.meta.inbound import parse
from edge_onboard.meta.message_model import Found
from edge_onboard.meta.readers import MAX_DEPTH
from edge_onboard.storage import Storage
from edge_onboard.webhooks.catalog import EVENT_TYPES
from edge_onboard.webhooks.delivery import Sender
from tests.conftest import FakeClock, make_settings, running_app
from tests.meta.test_inbound import World
from tests.webhooks.test_delivery import Receiver

pytestmark = pytest.mark.anyio

META_PHONE = "106540352242922"
SENDER = "15551234567"
BODY = "Olá, meu número é 15559876543"
# Values a log line must never carry; the valid parts of the payloads below hold them.
PRIVATE = (SENDER, "15559876543", "Olá")

# Any JSON value orjson can write: its integers stop at the unsigned 64-bit range.
SCALAR: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALAR,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


class _Absent:
    """A replacement that removes the key instead of giving it a value."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def near_valid(meta_phone: str, junk: Mapping[str, Any], message_id: str = "wamid.F1") -> Any:
    """Meta's payload with a message of every documented type, an echo, two statuses, a
    contact and a reported error, each ``junk`` level swapped for its replacement."""

    def obj(level: str, **fields: Any) -> Any:
        """The object at ``level``, each field of which (``level.key``) may be junk too."""
        built = {k: junk.get(f"{level}.{k}".lstrip("."), v) for k, v in fields.items()}
        return junk.get(level, {k: v for k, v in built.items() if v is not ABSENT})

    def one(level: str, *items: Any) -> Any:
        return junk.get(level, [item for item in items if item is not ABSENT])

    def message(n: int, kind: str, **content: Any) -> Any:
        level = f"messages[{n}]"
        return obj(
            level,
            id=f"{message_id}.{n}",
            type=kind,
            timestamp="1795569813",
            **{"from": SENDER},
            **{key: build(f"{level}.{key}") for key, build in content.items()},
        )

    def error(level: str) -> Any:
        details = obj(f"{level}.error_data", details=BODY)
        return obj(level, code=131026, title="Undeliverable", message=BODY, error_data=details)

    messages = one(
        "messages",
        message(
            0,
            "text",
            text=lambda at: obj(at, body=BODY),
            context=lambda at: obj(
                at,
                id="wamid.C",
                forwarded=True,
                frequently_forwarded=False,
                referred_product=obj(
                    f"{at}.referred_product", catalog_id="1", product_retailer_id="2"
                ),
                **{"from": SENDER},
            ),
            referral=lambda at: obj(
                at,
                source_url="https://fb.me/x",
                source_id="AD",
                source_type="ad",
                headline=BODY,
                body=BODY,
                media_type="image",
                image_url="https://scontent.example/i",
                ctwa_clid="CLID",
                welcome_message=obj(f"{at}.welcome_message", text=BODY),
            ),
        ),
        message(
            1,
            "image",
            image=lambda at: obj(
                at, id="MEDIA1", mime_type="image/jpeg", sha256="c2hh", caption=BODY
            ),
        ),
        message(2, "audio", audio=lambda at: obj(at, id="MEDIA2", voice=True)),
        message(
            3,
            "location",
            location=lambda at: obj(at, latitude=38.7, longitude=-9, name=BODY, address=BODY),
        ),
        message(
            4,
            "contacts",
            contacts=lambda at: one(
                at,
                obj(
                    f"{at}[0]",
                    name=obj(f"{at}[0].name", formatted_name=BODY, first_name="Ana"),
                    phones=one(
                        f"{at}[0].phones", obj(f"{at}[0].phones[0]", phone=SENDER, wa_id=SENDER)
                    ),
                    emails=one(f"{at}[0].emails", obj(f"{at}[0].emails[0]", email="a@b.example")),
                    addresses=one(f"{at}[0].addresses", obj(f"{at}[0].addresses[0]", city=BODY)),
                    org=obj(f"{at}[0].org", company=BODY),
                    birthday="2000-01-31",
                ),
            ),
        ),
        message(
            5,
            "interactive",
            interactive=lambda at: obj(
                at,
                type="list_reply",
                list_reply=obj(f"{at}.list_reply", id="row1", title=BODY, description=BODY),
            ),
        ),
        message(
            6,
            "interactive",
            interactive=lambda at: obj(
                at,
                type="nfm_reply",
                nfm_reply=obj(f"{at}.nfm_reply", name="flow", body="Sent", response_json='{"a":1}'),
            ),
        ),
        message(7, "button", button=lambda at: obj(at, payload="yes", text=BODY)),
        message(
            8,
            "order",
            order=lambda at: obj(
                at,
                catalog_id="CAT",
                text=BODY,
                product_items=one(
                    f"{at}.product_items",
                    obj(
                        f"{at}.product_items[0]",
                        product_retailer_id="SKU",
                        quantity=2,
                        item_price=9.5,
                        currency="EUR",
                    ),
                ),
            ),
        ),
        message(9, "reaction", reaction=lambda at: obj(at, message_id="wamid.OUT", emoji="👍")),
        message(
            10,
            "edit",
            edit=lambda at: obj(
                at,
                original_message_id="wamid.T",
                message=obj(
                    f"{at}.message",
                    type="text",
                    text=obj(f"{at}.message.text", body=BODY),
                    context=obj(f"{at}.message.context", id="wamid.C"),
                ),
            ),
        ),
        message(11, "revoke", revoke=lambda at: obj(at, original_message_id="wamid.T")),
        message(
            12,
            "system",
            system=lambda at: obj(at, body=BODY, wa_id="15559876543", type="user_changed_number"),
            identity=lambda at: obj(
                at, acknowledged=True, created_timestamp="1795569813", hash="h"
            ),
        ),
        message(
            13,
            "unsupported",
            unsupported=lambda at: obj(at, type="poll"),
            errors=lambda at: one(at, error(f"{at}[0]")),
        ),
    )
    value = obj(
        "value",
        messaging_product="whatsapp",
        metadata=obj("metadata", display_phone_number="15550100000", phone_number_id=meta_phone),
        errors=one("errors", obj("errors[0]", code=131000, title="Something went wrong")),
        contacts=one(
            "contacts",
            obj(
                "contacts[0]",
                wa_id=SENDER,
                user_id="US.1",
                parent_user_id="US.ENT.1",
                profile=obj("contacts[0].profile", name="Ana"),
            ),
        ),
        messages=messages,
        message_echoes=one(
            "message_echoes",
            obj(
                "message_echoes[0]",
                id=message_id + ".echo",
                to=SENDER,
                to_user_id="US.1",
                timestamp="1795569813",
                type="text",
                text=obj("message_echoes[0].text", body=BODY),
                **{"from": "15550100000"},
            ),
        ),
        statuses=one(
            "statuses",
            obj(
                "statuses[0]",
                id=message_id + ".out",
                status="failed",
                timestamp="1795569813",
                recipient_id=SENDER,
                errors=one("statuses[0].errors", error("statuses[0].errors[0]")),
            ),
            obj(
                "statuses[1]",
                id=message_id + ".out",
                status="read",
                timestamp="1795569813",
                recipient_id=SENDER,
                biz_opaque_callback_data=BODY,
                conversation=obj(
                    "statuses[1].conversation",
                    id="CONV",
                    expiration_timestamp="1795569813",
                    origin=obj("statuses[1].conversation.origin", type="service"),
                ),
                pricing=obj(
                    "statuses[1].pricing",
                    billable=True,
                    pricing_model="PMP",
                    category="service",
                    type="free_customer_service",
                ),
            ),
        ),
    )
    change = obj("changes[0]", field="messages", value=value)
    entry = obj("entry[0]", id="WABA", changes=one("changes", change))
    return obj("", object="whatsapp_business_account", entry=one("entry", entry))


class _Levels(dict[str, Any]):
    """Records every level the template asks about: those are what junk can replace."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.append(key)
        return default


def _levels() -> tuple[str, ...]:
    recorder = _Levels()
    near_valid(META_PHONE, recorder)
    return tuple(level for level in dict.fromkeys(recorder.asked) if level)


LEVELS = _levels()
# Some levels of a valid payload replaced by any JSON value, or removed. Scalars are drawn
# on their own as well: JSON alone gives mostly containers, and a number where a list
# belongs is what a shape-blind parser trips on (60 examples then found the old 500s
# nearly every run, against one run in five).
JUNK: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.sampled_from(LEVELS), SCALAR | JSON | st.just(ABSENT), min_size=1, max_size=4
)
# Every event body must match the schema /openapi.json publishes for its type.
VALIDATORS = {
    name: jsonschema_rs.validator_for(event_schema(name), validate_formats=True)
    for name in EVENT_TYPES
}


def check_event(org_id: str, found: Found) -> None:
    body: dict[str, Any] = {
        "id": "evt_1",
        "event": found.event_type,
        "timestamp": "2026-11-25T12:00:00.000Z",
        "organizationId": org_id,
        "livemode": True,
        # As the service records it: the number, its WABA, and whose it is (owners.py).
        "data": {
            "phoneNumberId": org_id,
            "wabaId": org_id,
            "onboardingLinkId": org_id,
            "externalId": None,
            **found.data,
        },
    }
    VALIDATORS[found.event_type].validate(body)
    # Every key the payload has is published, and every published key is there.
    assert set(body["data"]) == set(
        event_schema(found.event_type)["properties"]["data"]["properties"]
    )


def test_the_near_valid_template_is_valid() -> None:
    """Without junk the template gives every event it was written to give, each as its
    schema says."""
    (change,) = parse(orjson.dumps(near_valid(META_PHONE, {}))).changes
    assert change.meta_phone_id == META_PHONE
    assert [(f.kind, f.event_type) for f in change.events] == [
        *[("received", "message.received")] * 9,
        ("reaction", "message.reaction"),
        ("edited", "message.edited"),
        ("deleted", "message.deleted"),
        ("contact", "contact.changed"),
        ("received", "message.received"),
        ("echo", "message.echo"),
        ("failed", "message.failed"),
        ("read", "message.read"),
        ("error", "phone_number.error"),
    ]
    for found in change.events:
        check_event(str(uuid.uuid4()), found)
    text, image, audio, *_ = (f.data for f in change.events)
    assert (text["text"], text["contactName"], text["userId"], text["timestamp"]) == (
        BODY,
        "Ana",
        "US.1",
        "2026-11-25T01:23:33.000Z",
    )
    assert text["context"]["forwarded"] and text["referral"]["welcomeMessage"] == {"text": BODY}
    assert image["media"] == {
        "id": "MEDIA1",
        "mimeType": "image/jpeg",
        "sha256": "c2hh",
        "caption": BODY,
        "filename": None,
        "voice": None,
        "animated": None,
        "url": None,
    }
    assert audio["media"]["voice"] is True
    by_type = {f.event_type: f.data for f in change.events}
    assert by_type["message.failed"]["errors"][0]["code"] == 131026
    assert by_type["message.read"]["pricing"]["type"] == "free_customer_service"


class Lines(logging.Handler):
    """The edge_onboard.meta.inbound records of one request: caplog is per test, and these
    checks are per hypothesis example."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def unusable(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.getMessage().startswith("inbound: ")]


@contextmanager
def inbound_lines() -> Iterator[Lines]:
    logger = logging.getLogger("edge_onboard.meta.inbound")
    lines, level = Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


def check_parse(raw: bytes) -> None:
    with inbound_lines() as lines:
        parsed = parse(raw)  # the property: no exception escapes
    unusable = lines.unusable()
    assert len(unusable) <= 1, unusable
    for line in unusable:
        assert not any(private in line for private in PRIVATE), line
    for change in parsed.changes:
        assert change.meta_phone_id is None or isinstance(change.meta_phone_id, str)
        for found in change.events:
            assert found.event_type in EVENT_TYPES and found.kind
            assert isinstance(found.meta_id, str) and found.meta_id
            # What is recorded must fit every store: BSON is the narrowest (64-bit ints).
            bson.encode({"data": found.data})
            orjson.dumps(found.data)
            check_event("0b5e2c8e-4a0c-4f57-9a3d-7f1f0c9b6e21", found)


@settings(deadline=None, max_examples=400)
@given(JSON)
def test_parse_takes_any_json(payload: Any) -> None:
    check_parse(orjson.dumps(payload))


@settings(deadline=None, max_examples=400)
@given(JUNK)
def test_parse_takes_near_valid_payloads(junk: dict[str, Any]) -> None:
    check_parse(orjson.dumps(near_valid(META_PHONE, junk)))


@settings(deadline=None, max_examples=100)
@given(st.binary(max_size=64) | JSON.map(lambda v: orjson.dumps(v)[:-1]))
def test_parse_takes_any_bytes(raw: bytes) -> None:
    check_parse(raw)


def test_parse_takes_json_numbers_a_datetime_cannot_hold() -> None:
    for when in (b"1e308", b"-1e308", b"18446744073709551615", b'"99999999999999999999"'):
        raw = orjson.dumps(near_valid(META_PHONE, {"messages[0].timestamp": 0}))
        with inbound_lines() as lines:
            (change,) = parse(raw.replace(b'"timestamp":0', b'"timestamp":' + when)).changes
        assert change.events[0].data["timestamp"] is None
        # An integer past 64 bits cannot be stored as it is, in raw either: kept as text.
        past_64_bits = when == b"18446744073709551615"
        assert lines.unusable() == [
            "inbound: entry[0].changes[0].value.messages[0].timestamp is "
            + ("str" if when.startswith(b'"') else type(orjson.loads(when)).__name__)
            + ", expected a Unix time; skipped"
            + (" (and 1 more)" if past_64_bits else "")
        ]
        if past_64_bits:
            assert change.events[0].data["raw"]["timestamp"] == when.decode()


def test_an_error_code_beyond_64_bits_is_dropped() -> None:
    raw = orjson.dumps(near_valid(META_PHONE, {"statuses[0].errors[0].code": 2**64 - 1}))
    with inbound_lines() as lines:
        (change,) = parse(raw).changes
    (failed,) = [f.data for f in change.events if f.event_type == "message.failed"]
    assert failed["errors"][0]["code"] is None
    assert failed["raw"]["errors"][0]["code"] == str(2**64 - 1)
    assert lines.unusable() == [
        "inbound: entry[0].changes[0].value.statuses[0].errors[0].code is int,"
        " expected a 64-bit int; skipped (and 1 more)"
    ]


def test_raw_keeps_what_every_store_can_hold() -> None:
    """Meta's object rides along untouched, unless no store could keep it: then a NUL in a
    key becomes U+FFFD and what nests MAX_DEPTH levels down null, with one warning."""
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 5):
        deep = {"next": deep}
    payload = near_valid(META_PHONE, {})
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    messages[2]["audio"]["extra"] = {"a\0b": 1, "deep": deep}
    with inbound_lines() as lines:
        (change,) = parse(orjson.dumps(payload)).changes
    extra = change.events[2].data["raw"]["audio"]["extra"]
    assert extra["a\ufffdb"] == 1
    node = extra["deep"]  # the message is level 0, so this is level 3
    for _ in range(MAX_DEPTH - 4):
        node = node["next"]
    assert node == {"next": None}
    assert lines.unusable() == [
        "inbound: entry[0].changes[0].value.messages[2] (raw) is object,"
        " expected JSON every store can hold (kept in part); skipped"
    ]
    assert [found.data["raw"] for found in change.events[:2]] == messages[:2]


@pytest.fixture
async def world(storage: Storage) -> AsyncIterator[World]:
    clock = FakeClock(datetime.now(UTC))
    receiver = Receiver()
    settings = make_settings(EDGE_SANDBOX="1", EDGE_WEBHOOK_ALLOW_PRIVATE="1")
    async with running_app(storage, clock, settings) as client:
        services = client.services
        services.engine.sender = Sender(
            allow_private=True, transport=httpx.MockTransport(receiver.handler)
        )
        world = World(client, services, receiver)
        _, _, key = await create_key(storage, "acme", clock())
        world.auth = {"Authorization": f"Bearer {key}"}
        yield world


@pytest.fixture
async def phone(world: World) -> dict[str, Any]:
    phone = await world.connect()
    await world.delivered()  # the phone_number.connected event, out of the way
    world.receiver.requests.clear()
    return phone


# One app and one connected number serve every example, as one service serves Meta: an
# app per example would cost seconds each. Hypothesis flags function-scoped fixtures
# because they are not reset between examples; nothing here needs them to be, as each
# example checks only its own response.
@settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(payload=st.tuples(st.just("any"), JSON) | st.tuples(st.just("near"), JUNK))
# The shapes the attack run found (and a code BSON cannot hold), on every run.
@example(payload=("near", {"messages": 1, "contacts": True}))
@example(payload=("near", {"statuses": 2.5}))
@example(payload=("near", {"statuses[0].errors": -1}))
@example(payload=("near", {"statuses[0].errors[0].code": 2**64 - 1}))
async def test_every_signed_body_is_answered_200(
    world: World, phone: dict[str, Any], payload: tuple[str, Any]
) -> None:
    shape, generated = payload
    body = near_valid(phone["metaPhoneNumberId"], generated) if shape == "near" else generated
    response = await world.meta_post(phone["phoneNumberId"], orjson.dumps(body))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("field", ["messages", "statuses", "contacts", "errors"])
async def test_a_field_that_is_not_a_list_is_one_warning(
    world: World, phone: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for bad in (
        f"{BODY} (+{SENDER})",
        {"from": SENDER, "id": "wamid.X", "text": {"body": BODY}},
        int(SENDER),
    ):
        body = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550100000",
                                    "phone_number_id": phone["metaPhoneNumberId"],
                                },
                                field: bad,
                            },
                        }
                    ],
                }
            ],
        }
        caplog.clear()
        response = await world.meta_post(phone["phoneNumberId"], body)
        assert response.status_code == 200
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        found = {str: "str", dict: "object", int: "int"}[type(bad)]
        assert [(r.name, r.getMessage()) for r in warnings] == [
            (
                "edge_onboard.meta.inbound",
                f"inbound: entry[0].changes[0].value.{field} is {found}, expected a list; skipped",
            )
        ]
        assert not any(private in caplog.text for private in PRIVATE)
    assert await world.delivered() == []
