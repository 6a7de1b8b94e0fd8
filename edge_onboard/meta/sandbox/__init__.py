"""The built-in fake of Meta: the Graph calls Embedded Signup makes, and a JS SDK whose
``FB.login`` opens a popup with "Finish" and "Cancel". ``EDGE_SANDBOX=1`` runs the whole
service against it; test-mode objects run against it on every deployment.

It answers in Meta's shapes (see meta-embedded-signup facts in the docs) so the whole
flow, page → popup → callback → completion, runs with no network and no Meta app.
State lives in each process; with Redis configured it is shared with every other
process of the deployment (``sharing``), so a signup works whichever process or machine
each of its requests reaches.

The parts: ``_state`` (constants and state), ``sharing`` (Redis), ``media``,
``messaging`` (what the fake sends to the service), ``fake`` (the dialog's endings and
Graph), ``pages`` and ``dialog`` (the browser side).
"""

from edge_onboard.meta.sandbox._state import (
    APP_ID,
    APP_SECRET,
    APP_WEBHOOK_URL,
    CODE_TTL,
    CONFIG_ID,
    SCENARIOS,
    SYSTEM_USER_TOKEN,
    VERIFY_CODE,
    graph_error,
)
from edge_onboard.meta.sandbox.fake import SandboxMeta

__all__ = [
    "APP_ID",
    "APP_SECRET",
    "APP_WEBHOOK_URL",
    "CODE_TTL",
    "CONFIG_ID",
    "SCENARIOS",
    "SYSTEM_USER_TOKEN",
    "VERIFY_CODE",
    "SandboxMeta",
    "graph_error",
]
