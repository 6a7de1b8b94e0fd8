"""The OpenAPI document's hosted routes of an update link's page (internal, as the rest
of the page's: edge_onboard/hosted/updates.py)."""

from __future__ import annotations

from edge_onboard.api.openapi._common import LINK_ID, Schema, _json, _ref


def update_paths() -> Schema:
    """``POST /signup/{id}/update`` and ``…/update/finish``."""
    errors = {
        "400": "Malformed request, or a profile field Meta would refuse (param names it).",
        "403": "No valid pass for this link, or a cross-origin request.",
        "404": "Unknown link, or not an update link.",
        "409": "The link was used already, or is being used in another window.",
        "410": "Expired or deleted link.",
        "422": "Meta refused the profile.",
        "429": "Too many requests (this address, or this link): see Retry-After.",
        "502": "Meta could not be reached.",
    }
    answers = {code: _json(_ref("CallbackResponse"), text) for code, text in errors.items()}
    return {
        "/signup/{id}/update": {
            "parameters": [LINK_ID],
            "post": {
                "operationId": "hostedUpdateSteps",
                "security": [],
                "summary": "An update link's page asks what its number needs now",
                "responses": {
                    "200": _json(_ref("UpdatePlan"), "The steps, in order, and the pass."),
                    **{code: answers[code] for code in ("403", "404", "409", "410", "429")},
                },
            },
        },
        "/signup/{id}/update/finish": {
            "parameters": [LINK_ID],
            "post": {
                "operationId": "hostedUpdateFinish",
                "security": [],
                "summary": "The profile fields the end-user changed, then the link completed",
                "parameters": [
                    {
                        "name": "X-Signup-Pass",
                        "in": "header",
                        "required": True,
                        "description": "The pass POST /signup/{id}/update gave this page.",
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"profile": _ref("BusinessProfileUpdate")},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        _ref("CallbackResponse"), "Completed; redirectUrl says where to go."
                    ),
                    **answers,
                },
            },
        },
    }
