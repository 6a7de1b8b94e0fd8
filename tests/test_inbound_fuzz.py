"""Meta's signed webhooks of any JSON shape: never an error, always 200, one warning."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import bson
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_onboard.auth import create_key
from edge_onboard.delivery import Sender
from edge_onboard.inbound import parse
from edge_onboard.storage import Storage
from tests.conftest import FakeClock, make_settings, running_app
from tests.test_delivery import Receiver
from tests.test_inbound import World

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
LEVELS = (
    "entry",
    "entry[0]",
    "changes",
    "changes[0]",
    "value",
    "metadata",
    "metadata.phone_number_id",
    "errors",
    "errors[0]",
    "errors[0].code",
    "contacts",
    "contacts[0]",
    "contacts[0].wa_id",
    "contacts[0].profile",
    "contacts[0].profile.name",
    "messages",
    "messages[0]",
    "messages[0].id",
    "messages[0].from",
    "messages[0].type",
    "messages[0].timestamp",
    "messages[0].text",
    "messages[0].text.body",
    "messages[1]",
    "messages[1].type",
    "messages[1].image",
    "messages[1].image.id",
    "messages[1].image.mime_type",
    "statuses",
    "statuses[0]",
    "statuses[0].id",
    "statuses[0].status",
    "statuses[0].timestamp",
    "statuses[0].recipient_id",
    "statuses[0].errors",
    "statuses[0].errors[0]",
    "statuses[0].errors[0].code",
    "statuses[0].errors[0].error_data",
    "statuses[0].errors[0].error_data.details",
)
# Some levels of a valid payload replaced by any JSON value, or removed. Scalars are drawn
# on their own as well: JSON alone gives mostly containers, and a number where a list
# belongs is what a shape-blind parser trips on (60 examples then found the old 500s
# nearly every run, against one run in five).
JUNK: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.sampled_from(LEVELS), SCALAR | JSON | st.just(ABSENT), min_size=1, max_size=4
)


def near_valid(meta_phone: str, junk: dict[str, Any], message_id: str = "wamid.F1") -> Any:
    """Meta's payload with a message, a media message, a failed status, a contact and a
    reported error, each ``junk`` level swapped for its replacement."""

    def obj(level: str, **fields: Any) -> Any:
        """The object at ``level``, each field of which (``level.key``) may be junk too."""
        built = {k: junk.get(f"{level}.{k}".lstrip("."), v) for k, v in fields.items()}
        return junk.get(level, {k: v for k, v in built.items() if v is not ABSENT})

    def one(level: str, *items: Any) -> Any:
        return junk.get(level, [item for item in items if item is not ABSENT])

    value = obj(
        "value",
        messaging_product="whatsapp",
        metadata=obj("metadata", display_phone_number="15550100000", phone_number_id=meta_phone),
        errors=one("errors", obj("errors[0]", code=131000, title="Something went wrong")),
        contacts=one(
            "contacts",
            obj("contacts[0]", wa_id=SENDER, profile=obj("contacts[0].profile", name="Ana")),
        ),
        messages=one(
            "messages",
            obj(
                "messages[0]",
                id=message_id,
                type="text",
                timestamp="1795569813",
                text=obj("messages[0].text", body=BODY),
                **{"from": SENDER},
            ),
            obj(
                "messages[1]",
                id=message_id + ".image",
                type="image",
                timestamp="1795569813",
                image=obj("messages[1].image", id="MEDIA1", mime_type="image/jpeg"),
                **{"from": SENDER},
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
                errors=one(
                    "statuses[0].errors",
                    obj(
                        "statuses[0].errors[0]",
                        code=131026,
                        title="Undeliverable",
                        message=BODY,
                        error_data=obj("statuses[0].errors[0].error_data", details=BODY),
                    ),
                ),
            ),
        ),
    )
    change = obj("changes[0]", field="messages", value=value)
    entry = obj("entry[0]", id="WABA", changes=one("changes", change))
    return obj("", object="whatsapp_business_account", entry=one("entry", entry))


def test_the_near_valid_template_is_valid() -> None:
    """Without junk the template gives every event it was written to give."""
    (change,) = parse(orjson.dumps(near_valid(META_PHONE, {}))).changes
    assert change.meta_phone_id == META_PHONE
    assert [(kind, event_type) for kind, event_type, _ in change.events] == [
        ("received", "message.received"),
        ("received", "message.received"),
        ("failed", "message.failed"),
    ]
    text, image, failed = (data for _, _, data in change.events)
    assert (text["text"], text["contactName"], text["timestamp"]) == (
        BODY,
        "Ana",
        "2026-11-25T01:23:33.000Z",
    )
    assert image["media"] == {
        "id": "MEDIA1",
        "mimeType": "image/jpeg",
        "caption": None,
        "filename": None,
    }
    assert failed["errors"][0]["code"] == 131026


class Lines(logging.Handler):
    """The edge_onboard.inbound records of one request: caplog is per test, and these
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
    logger = logging.getLogger("edge_onboard.inbound")
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
        for kind, event_type, data in change.events:
            assert isinstance(kind, str) and event_type.startswith("message.")
            assert isinstance(data["metaMessageId"], str) and data["metaMessageId"]
            # What is recorded must fit every store: BSON is the narrowest (64-bit ints).
            bson.encode({"data": data})
            orjson.dumps(data)


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
        assert change.events[0][2]["timestamp"] is None
        assert lines.unusable() == [
            "inbound: entry[0].changes[0].value.messages[0].timestamp is "
            + ("str" if when.startswith(b'"') else type(orjson.loads(when)).__name__)
            + ", expected a Unix time; skipped"
        ]


def test_an_error_code_beyond_64_bits_is_dropped() -> None:
    raw = orjson.dumps(near_valid(META_PHONE, {"statuses[0].errors[0].code": 2**64 - 1}))
    with inbound_lines() as lines:
        (change,) = parse(raw).changes
    assert change.events[-1][2]["errors"][0]["code"] is None
    assert lines.unusable() == [
        "inbound: entry[0].changes[0].value.statuses[0].errors[0].code is int,"
        " expected a 64-bit int; skipped"
    ]


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
                "edge_onboard.inbound",
                f"inbound: entry[0].changes[0].value.{field} is {found}, expected a list; skipped",
            )
        ]
        assert not any(private in caplog.text for private in PRIVATE)
    assert await world.delivered() == []
