"""Test mode and live mode: which Meta each runs against.

Test objects (made with an ``sk_test_`` key) always run against the built-in fake of
Meta (edge_onboard/meta/sandbox/), whatever the deployment; live objects use the
configured Meta app, or none. ``EDGE_SANDBOX=1`` makes live mode sandboxed too.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from edge_onboard.meta.inbound import signature_ok

if TYPE_CHECKING:
    from edge_onboard.meta.graph import GraphClient


@dataclasses.dataclass(frozen=True, slots=True)
class MetaApp:
    """The Meta app: ids for the hosted page, the secret that signs Meta's webhooks."""

    app_id: str
    config_id: str
    secret: str = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class MetaModes:
    """The Meta app and Graph client of each mode."""

    live_app: MetaApp | None
    live_graph: GraphClient | None
    test_app: MetaApp
    test_graph: GraphClient
    # EDGE_SANDBOX: live mode runs against the fake too (the same app and client).
    everything_sandboxed: bool = False

    def app(self, livemode: bool) -> MetaApp | None:
        return self.live_app if livemode else self.test_app

    def graph(self, livemode: bool) -> GraphClient | None:
        return self.live_graph if livemode else self.test_graph

    def sandboxed(self, livemode: bool) -> bool:
        """Whether that mode's signups run against the built-in fake Meta."""
        return self.everything_sandboxed or not livemode

    def signed(self, raw: bytes, signature: str | None) -> Signed | None:
        """Which Meta signed a webhook body: the configured app (it may touch live objects
        only) or the fake (test objects only); under EDGE_SANDBOX the fake speaks for both.
        None: neither signed it (the caller answers 401)."""
        if self.everything_sandboxed:
            return Signed(None) if signature_ok(self.test_app.secret, raw, signature) else None
        if self.live_app is not None and signature_ok(self.live_app.secret, raw, signature):
            return Signed(True)
        if signature_ok(self.test_app.secret, raw, signature):
            return Signed(False)
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Signed:
    """A verified Meta webhook: the mode of the objects it may touch (None: either)."""

    livemode: bool | None

    def allows(self, livemode: bool) -> bool:
        return self.livemode is None or self.livemode == livemode
