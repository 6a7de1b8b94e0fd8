"""The Graph steps every signup takes before anything is recorded, whether it makes a
new connection (edge_onboard/onboarding/completion.py) or restores one
(edge_onboard/onboarding/updates.py): the code exchanged once, Meta's word on which
accounts the token grants, the account's numbers; and how a failed step answers the page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from edge_onboard.meta.graph import GraphClient, GraphError, PhoneInfo
from edge_onboard.onboarding.connect import PhoneSetup, StepFailed, set_up_phone

log = logging.getLogger("edge_onboard.onboarding.signup_steps")
T = TypeVar("T")


class SignupFailed(Exception):
    """The attempt failed; the link stays pending. ``status`` is the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def step_failed(exc: GraphError, code: str, message: str) -> SignupFailed:
    """A Graph step's failure as the page's answer: 502 when Meta was unreachable."""
    if exc.unreachable:
        return SignupFailed(
            502, "meta_unavailable", "Meta could not be reached; please try again in a moment."
        )
    return SignupFailed(422, code, f"{message} (Meta error {exc.code})")


async def meta_step(call: Awaitable[T], code: str, message: str) -> T:
    try:
        return await call
    except GraphError as exc:
        log.warning("graph call failed (%s): %s", code, exc)
        raise step_failed(exc, code, message) from exc


async def granted_numbers(
    graph: GraphClient, waba_id: str, code: str, token: str | None, *, refusal: SignupFailed
) -> tuple[str, list[PhoneInfo]]:
    """The business token (``code`` exchanged, once: Meta's codes are single-use; or the
    ``token`` recovery fetched) and the numbers of ``waba_id``, once Meta confirms the
    token grants that account; else ``refusal``."""
    if token is None:
        token = await meta_step(
            graph.exchange_code(code),
            "code_exchange_failed",
            "Meta did not accept the signup code; please start again.",
        )
    granted = await meta_step(
        graph.granted_waba_ids(token),
        "token_check_failed",
        "Meta did not confirm what this signup granted.",
    )
    if waba_id not in granted:
        raise refusal
    numbers = await meta_step(
        graph.waba_phone_numbers(waba_id, token),
        "phone_lookup_failed",
        "Meta did not list the account's numbers.",
    )
    return token, numbers


async def connect_number(
    graph: GraphClient,
    token: str,
    info: PhoneInfo,
    *,
    public_url: str,
    phone_id: str,
    verify_token: Callable[[str], str],
    coexistence: bool,
    pin_for: Callable[[], Awaitable[str]],
) -> PhoneSetup:
    """``set_up_phone`` for a signup: the number's webhooks at its own URL
    (``/webhook/phone/{phone_id}``), a failed required step as the page's answer."""
    try:
        return await set_up_phone(
            graph,
            token,
            info,
            callback_url=f"{public_url}/webhook/phone/{phone_id}",
            verify_token=verify_token(phone_id),
            coexistence=coexistence,
            pin_for=pin_for,
        )
    except StepFailed as exc:
        raise step_failed(exc.error, exc.code, exc.message) from exc
