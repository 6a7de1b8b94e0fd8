"""The API of a running deployment, as ``trigger`` and ``listen`` call it: its URL, a key,
and its errors made plain."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8080"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class RemoteError(Exception):
    """A request the deployment refused or could not answer; the message says what to do."""


class Remote:
    """A key's view of one deployment's ``/v1`` API."""

    def __init__(self, api_url: str | None, key: str | None) -> None:
        self.api_url = (api_url or os.environ.get("EDGE_API_URL") or DEFAULT_API_URL).rstrip("/")
        key = key or os.environ.get("EDGE_API_KEY")
        if not key:
            raise RemoteError(
                "give an API key: --key sk_test_… (or EDGE_API_KEY); "
                "`edge-onboard keys create --org NAME --test` makes one"
            )
        self.livemode = not key.startswith("sk_test_")
        self.client = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "edge-onboard-cli"},
            timeout=TIMEOUT,
        )

    def close(self) -> None:
        self.client.close()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer to one request; a refusal or no answer raises ``RemoteError``."""
        try:
            response = self.client.request(method, path, json=body, params=params)
        except httpx.TransportError as exc:
            raise RemoteError(
                f"cannot reach {self.api_url} ({type(exc).__name__}): is `edge-onboard serve` "
                "running there? (--api-url or EDGE_API_URL names another)"
            ) from exc
        if response.status_code >= 400:
            raise RemoteError(_refusal(response))
        return response

    def data(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        """The ``data`` of a JSON answer."""
        return self.call(method, path, body, params or None).json()["data"]

    def event_types(self) -> list[str]:
        return [item["type"] for item in self.data("GET", "/v1/event-types")]


def _refusal(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        said = f"{error['message']} ({error['code']})"
    except (ValueError, KeyError, TypeError):
        said = response.text[:200] or response.reason_phrase
    where = f"{response.request.method} {response.request.url.path}"
    return f"{where} answered {response.status_code}: {said}"


def unknown(name: str, known: Iterable[str], what: str = "event type") -> str:
    """The message for an unknown name, with the closest known one if any."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown {what} {name!r}{hint}"
