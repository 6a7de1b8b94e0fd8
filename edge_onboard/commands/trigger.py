"""``edge-onboard trigger EVENT``: cause one event on a deployment with a test key, like
``stripe trigger``. It creates what the event needs (a test link completed through the
fake Meta, hence a test phone and WABA), causes the event through the test helpers
(``POST /v1/test-helpers/…``) or the public API, then waits until ``GET /v1/events``
shows it and prints its id.

``--field F --value JSON`` sends any Meta webhook change about the test phone instead:
for event types this table does not name yet."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from edge_onboard.commands.remote import Remote, RemoteError, unknown
from edge_onboard.meta.sandbox import VERIFY_CODE, samples

HELPERS = "/v1/test-helpers"
WAIT_SECONDS = 15.0


@dataclass
class Scene:
    """What a trigger made, kept as it goes: the link, the phone, the WABA."""

    remote: Remote
    say: Callable[[str], None]
    link: dict[str, Any] = field(default_factory=dict)
    phone: dict[str, Any] = field(default_factory=dict)

    def new_link(self, name: str = "Trigger") -> dict[str, Any]:
        self.link = self.remote.data("POST", "/v1/onboarding-links", {"name": name})
        self.say(f"created test link {self.link['id']}")
        return self.link

    def connected(self, scenario: str = "ok") -> dict[str, Any]:
        """A test phone: a new link completed through the fake Meta."""
        if self.phone:
            return self.phone
        link = self.new_link()
        path = f"{HELPERS}/onboarding-links/{link['id']}/complete"
        done = self.remote.data("POST", path, {"scenario": scenario})
        self.phone = self.remote.data("GET", f"/v1/phones/{done['phoneNumberId']}")
        self.say(f"completed it through the fake Meta: test phone {self.phone['id']}")
        return self.phone

    def message(self, kind: str, **body: str) -> None:
        phone = self.connected()
        sent = self.remote.data(
            "POST", f"{HELPERS}/phones/{phone['id']}/messages", {"type": kind, **body}
        )
        self.say(f"the fake Meta sent a {kind} message ({sent['metaMessageId']})")

    def status(self, status: str) -> None:
        phone = self.connected()
        sent = self.remote.data(
            "POST", f"{HELPERS}/phones/{phone['id']}/statuses", {"status": status}
        )
        self.say(f"the fake Meta sent status {status} for {sent['metaMessageId']}")

    def webhook(self, field_name: str, value: dict[str, Any]) -> dict[str, Any]:
        phone = self.connected()
        body = {"field": field_name, "value": value}
        sent: dict[str, Any] = self.remote.data(
            "POST", f"{HELPERS}/phones/{phone['id']}/webhooks", body
        )
        self.say(f"the fake Meta sent a {field_name} webhook (to the {sent['sentTo']} callback)")
        return sent

    def account_update(self, event: str) -> None:
        waba = self.remote.data("GET", f"/v1/wabas/{self.connected()['wabaId']}")
        info = {"waba_id": waba["metaWabaId"], "owner_business_id": waba["metaBusinessId"]}
        self.webhook("account_update", {"event": event, "waba_info": info})


def _opened(scene: Scene) -> None:
    link = scene.new_link()
    scene.remote.call("GET", urlsplit(link["hostedUrl"]).path)
    scene.say("opened its hosted page")


def _failed(scene: Scene) -> None:
    link = scene.new_link()
    body = {"error": {"code": "signup_cancelled"}}
    try:
        scene.remote.call("POST", f"/signup/{link['id']}/callback", body)
    except RemoteError as exc:
        if " 422:" not in str(exc):  # the page's callback answers a cancel with 422
            raise
    scene.say("the end-user cancelled the signup on its page")


def _connected(scene: Scene) -> None:
    scene.connected()


def _verified(scene: Scene) -> None:
    phone = scene.connected("unverified")
    scene.remote.call("POST", f"/v1/phones/{phone['id']}/verification-code", {"method": "sms"})
    scene.remote.call("POST", f"/v1/phones/{phone['id']}/verify", {"code": VERIFY_CODE})
    scene.say("verified the test phone with the fake Meta's code")


def _echo(scene: Scene) -> None:
    phone = scene.connected()
    echo = {
        "from": (phone.get("phoneNumber") or "+15550000000").lstrip("+"),
        "to": samples.DEFAULT_SENDER,
        "id": samples.new_message_id(),
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": "Sent from the WhatsApp Business app"},
    }
    scene.webhook("smb_message_echoes", {"message_echoes": [echo]})


def _error(scene: Scene) -> None:
    errors = [{"code": 131000, "title": "Something went wrong", "message": "Sandbox error"}]
    scene.webhook("messages", {"errors": errors})


RECIPES: dict[str, Callable[[Scene], None]] = {
    "onboarding_link.opened": _opened,
    "onboarding_link.failed": _failed,
    "onboarding_link.completed": _connected,
    "phone_number.connected": _connected,
    "waba.connected": _connected,
    "phone_number.updated": _verified,
    "phone_number.error": _error,
    "message.received": lambda s: s.message("text"),
    "message.reaction": lambda s: s.message("reaction"),
    "message.edited": lambda s: s.message("edit"),
    "message.deleted": lambda s: s.message("revoke"),
    "contact.changed": lambda s: s.message("system"),
    "message.echo": _echo,
    **{
        f"message.{status}": (lambda st: lambda s: s.status(st))(status)
        for status in samples.STATUSES
    },
    "waba.updated": lambda s: s.account_update("DISABLED_UPDATE"),
    "waba.disconnected": lambda s: s.account_update("PARTNER_REMOVED"),
}


def trigger(
    remote: Remote,
    event: str | None,
    say: Callable[[str], None],
    *,
    field_name: str | None = None,
    value: dict[str, Any] | None = None,
) -> str | None:
    """Cause ``event`` (or send ``field_name``/``value``); the id of the event it made
    (None for a raw webhook, whose events this does not know)."""
    if remote.livemode:
        raise RemoteError("trigger works with a test key (sk_test_…) only")
    scene = Scene(remote, say)
    started = _server_now(remote)
    if field_name is not None:
        scene.webhook(field_name, value or {})
        return None
    assert event is not None
    recipe = RECIPES.get(event)
    if recipe is None:
        known = remote.event_types()
        if event in known:
            raise RemoteError(
                f"trigger cannot cause {event} by itself yet; send Meta's webhook for it "
                "with --field FIELD --value JSON"
            )
        raise RemoteError(unknown(event, [*RECIPES, *known]))
    recipe(scene)
    return _wait_for(remote, event, started)


def _server_now(remote: Remote) -> str:
    """The deployment's clock (its Date header), as the events API writes times."""
    date = remote.call("GET", "/v1/event-types").headers.get("date")
    when = email.utils.parsedate_to_datetime(date) if date else datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _wait_for(remote: Remote, event: str, since: str) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = remote.data("GET", "/v1/events", type=event, limit="1", **{"created[gte]": since})
        if found:
            event_id: str = found[0]["id"]
            return event_id
        if time.monotonic() > deadline:
            raise RemoteError(
                f"the steps ran, but no {event} event appeared within {WAIT_SECONDS:.0f} s"
            )
        time.sleep(0.2)
