"""The OpenAPI document's /v1 operations: the API customers call with their keys."""

from __future__ import annotations

from edge_onboard.api.openapi._common import (
    _COMMON_ERRORS,
    _VERIFICATION_ERRORS,
    DELIVERY_ID,
    IDEMPOTENCY,
    LINK_ID,
    PAGING,
    PHONE_ID,
    WABA_ID,
    WEBHOOK_ID,
    Schema,
    _error,
    _json,
    _nullable,
    _ref,
)

# The create body's examples: a new signup, and an update link for a connected number.
LINK_CREATE_EXAMPLES: Schema = {
    "onboarding": {
        "summary": "A new signup",
        "value": {
            "name": "Acme Corp WhatsApp",
            "externalId": "customer_123",
            "redirectUrl": "https://app.example.com/whatsapp/done",
        },
    },
    "update": {
        "summary": "An update link: what a connected number needs, then its profile",
        "value": {
            "name": "Acme Corp WhatsApp",
            "type": "update",
            "phoneNumberId": "5590b529-e0ad-5f3d-a5c4-b82c1ab29526",
            "redirectUrl": "https://app.example.com/whatsapp/updated",
            "refreshUrl": "https://app.example.com/whatsapp/update-again",
        },
    },
}


def api_paths() -> Schema:
    """Every /v1 operation, with its parameters, bodies and responses."""
    return {
        "/v1/onboarding-links": {
            "post": {
                "operationId": "createOnboardingLink",
                "summary": "Create an onboarding link",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("OnboardingLinkCreate"),
                            "examples": LINK_CREATE_EXAMPLES,
                        }
                    },
                },
                "responses": {
                    "201": _json(_ref("OnboardingLinkResponse"), "The new link."),
                    "400": _error("Invalid parameters or JSON."),
                    "404": _error(
                        "An update link's phoneNumberId or wabaId names no object of this "
                        "organisation in this mode."
                    ),
                    "409": _error("Idempotency-Key reused with another body, or in use."),
                    "413": _error("Body over 1 MB."),
                    "415": _error("Body is not JSON."),
                    **_COMMON_ERRORS,
                },
            },
            "get": {
                "operationId": "listOnboardingLinks",
                "summary": "List onboarding links, newest first",
                "parameters": [
                    *PAGING,
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["pending", "completed", "expired"],
                        },
                    },
                    {
                        "name": "externalId",
                        "in": "query",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    },
                ],
                "responses": {
                    "200": _json(_ref("OnboardingLinkList"), "A page of links."),
                    "400": _error("Invalid query parameter."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/onboarding-links/{id}": {
            "parameters": [LINK_ID],
            "get": {
                "operationId": "getOnboardingLink",
                "summary": "Retrieve an onboarding link",
                "responses": {
                    "200": _json(_ref("OnboardingLinkResponse"), "The link."),
                    "404": _error("No such link in this organisation."),
                    **_COMMON_ERRORS,
                },
            },
            "delete": {
                "operationId": "deleteOnboardingLink",
                "summary": "Delete a pending onboarding link",
                "responses": {
                    "200": _json(_ref("Deleted"), "Deleted."),
                    "404": _error("No such link in this organisation."),
                    "409": _error("The link is not pending (link_not_pending)."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/phones/{id}/messages": {
            "parameters": [PHONE_ID],
            "post": {
                "operationId": "sendMessage",
                "summary": "Send a text or template message through a connected number",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SendMessage")}},
                },
                "responses": {
                    "201": _json(_ref("SentMessage"), "Meta accepted it."),
                    "400": _error("Invalid parameters or JSON."),
                    "404": _error("No such phone in this organisation."),
                    "409": _error("Not registered (phone_not_registered), or key in use."),
                    "413": _error("Body over 1 MB."),
                    "415": _error("Body is not JSON."),
                    "422": _error("Meta refused the message (meta_rejected)."),
                    "502": _error("Meta unreachable: retry with the same Idempotency-Key."),
                    "503": _error("No Meta app configured."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/outgoing-webhooks": {
            "post": {
                "operationId": "createOutgoingWebhook",
                "summary": "Create an outgoing webhook (the secret is shown once)",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("OutgoingWebhookCreate")}},
                },
                "responses": {
                    "201": _json(_ref("OutgoingWebhookResponse"), "The new webhook."),
                    "400": _error("Invalid parameters or JSON."),
                    "404": _error("No such WABA (wabaId) in this organisation."),
                    "409": _error("Idempotency-Key reused with another body, or in use."),
                    "413": _error("Body over 1 MB."),
                    "415": _error("Body is not JSON."),
                    **_COMMON_ERRORS,
                },
            },
            "get": {
                "operationId": "listOutgoingWebhooks",
                "summary": "List outgoing webhooks, newest first",
                "parameters": PAGING,
                "responses": {
                    "200": _json(_ref("OutgoingWebhookList"), "A page of webhooks."),
                    "400": _error("Invalid query parameter."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/outgoing-webhooks/{id}": {
            "parameters": [WEBHOOK_ID],
            "get": {
                "operationId": "getOutgoingWebhook",
                "summary": "Retrieve an outgoing webhook",
                "responses": {
                    "200": _json(_ref("OutgoingWebhookResponse"), "The webhook."),
                    "404": _error("No such webhook in this organisation."),
                    **_COMMON_ERRORS,
                },
            },
            "patch": {
                "operationId": "updateOutgoingWebhook",
                "summary": "Change url, events, scope or status (re-enable a disabled one)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("OutgoingWebhookUpdate")}},
                },
                "responses": {
                    "200": _json(_ref("OutgoingWebhookResponse"), "The updated webhook."),
                    "400": _error("Invalid parameters or JSON."),
                    "404": _error("No such webhook in this organisation."),
                    "413": _error("Body over 1 MB."),
                    "415": _error("Body is not JSON."),
                    **_COMMON_ERRORS,
                },
            },
            "delete": {
                "operationId": "deleteOutgoingWebhook",
                "summary": "Delete an outgoing webhook",
                "responses": {
                    "200": _json(_ref("Deleted"), "Deleted."),
                    "404": _error("No such webhook in this organisation."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/outgoing-webhooks/{id}/deliveries": {
            "parameters": [WEBHOOK_ID],
            "get": {
                "operationId": "listWebhookDeliveries",
                "summary": "The webhook's deliveries and their attempts, newest first",
                "parameters": PAGING,
                "responses": {
                    "200": _json(_ref("WebhookDeliveryList"), "A page of deliveries."),
                    "400": _error("Invalid query parameter."),
                    "404": _error("No such webhook in this organisation."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/outgoing-webhooks/{id}/rotate-secret": {
            "parameters": [WEBHOOK_ID],
            "post": {
                "operationId": "rotateOutgoingWebhookSecret",
                "summary": "Replace the secret (shown once); the old one also signs for 24 h",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "secret": _nullable(
                                        {
                                            "type": "string",
                                            "minLength": 16,
                                            "maxLength": 256,
                                            "description": "generated (whsec_...) if omitted",
                                        }
                                    ),
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        _ref("OutgoingWebhookResponse"),
                        "The webhook with its new secret (shown only here).",
                    ),
                    "400": _error("Invalid parameters or JSON."),
                    "404": _error("No such webhook in this organisation."),
                    "409": _error(
                        "Rotated by another request at the same time "
                        "(secret_rotation_conflict), or Idempotency-Key reused or in use."
                    ),
                    "413": _error("Body over 1 MB."),
                    "415": _error("Body is not JSON."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/webhook-deliveries/{id}/retry": {
            "parameters": [DELIVERY_ID],
            "post": {
                "operationId": "retryWebhookDelivery",
                "summary": "Deliver again now",
                "responses": {
                    "202": _json(_ref("WebhookDeliveryResponse"), "Queued."),
                    "404": _error("No such delivery in this organisation."),
                    "409": _error("The endpoint is disabled (webhook_disabled)."),
                    "413": _error("Body over 1 MB."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/event-types": {
            "get": {
                "operationId": "listEventTypes",
                "summary": "The catalog of webhook event types",
                "responses": {
                    "200": _json(_ref("EventTypeList"), "Every event type."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/v1/phones": {
            "get": {
                "operationId": "listPhones",
                "summary": "List connected phone numbers, newest first",
                "parameters": PAGING,
                "responses": {
                    "200": _json(_ref("PhoneList"), "A page of phones."),
                    "400": _error("Invalid query parameter."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/v1/phones/{id}": {
            "parameters": [PHONE_ID],
            "get": {
                "operationId": "getPhone",
                "summary": "Retrieve a connected phone number",
                "responses": {
                    "200": _json(_ref("PhoneResponse"), "The phone."),
                    "404": _error("No such phone in this organisation."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/phones/{id}/verification-code": {
            "parameters": [PHONE_ID],
            "post": {
                "operationId": "requestVerificationCode",
                "summary": "Send a verification code to a number that finished unverified",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("VerificationCodeRequest")}},
                },
                "responses": {
                    "200": _json(_ref("PhoneResponse"), "The code is on its way."),
                    **_VERIFICATION_ERRORS,
                },
            },
        },
        "/v1/phones/{id}/verify": {
            "parameters": [PHONE_ID],
            "post": {
                "operationId": "verifyPhone",
                "summary": "Verify the number with its code, then register it",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("VerifyRequest")}},
                },
                "responses": {
                    "200": _json(
                        _ref("PhoneResponse"),
                        "Verified; status connected (or registration_failed).",
                    ),
                    **_VERIFICATION_ERRORS,
                },
            },
        },
        "/v1/wabas": {
            "get": {
                "operationId": "listWabas",
                "summary": "List connected WhatsApp Business Accounts, newest first",
                "parameters": PAGING,
                "responses": {
                    "200": _json(_ref("WabaList"), "A page of WABAs."),
                    "400": _error("Invalid query parameter."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/v1/wabas/{id}": {
            "parameters": [WABA_ID],
            "get": {
                "operationId": "getWaba",
                "summary": "Retrieve a WhatsApp Business Account",
                "responses": {
                    "200": _json(_ref("WabaResponse"), "The WABA."),
                    "404": _error("No such WABA in this organisation."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/wabas/{id}/phones/sync": {
            "parameters": [WABA_ID],
            "post": {
                "operationId": "syncWabaPhones",
                "summary": "Connect the numbers added to the WABA at Meta since",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("SyncRequest")}},
                },
                "responses": {
                    "200": _json(_ref("WabaResponse"), "The WABA with its numbers."),
                    "400": _error("Invalid body."),
                    "404": _error("No such WABA in this organisation."),
                    "409": _error("Idempotency-Key reused with another body, or in use."),
                    "415": _error("Body is not JSON."),
                    "422": _error("Meta refused a step."),
                    "502": _error("Meta unreachable."),
                    "503": _error("No Meta app configured."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/phones/{id}/health": {
            "parameters": [PHONE_ID],
            "get": {
                "operationId": "getPhoneHealth",
                "summary": "Live health of a phone number from Meta (cached 30 s)",
                "responses": {
                    "200": _json(_ref("PhoneHealth"), "Health and capabilities."),
                    "404": _error("No such phone in this organisation."),
                    "502": _error("Meta unreachable or refused the check."),
                    "503": _error("No Meta app configured."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/phones/{id}/media/{mediaId}": {
            "parameters": [
                PHONE_ID,
                {
                    "name": "mediaId",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "Meta's media id (media.id in a message event); "
                    "anything but digits is 404.",
                },
            ],
            "get": {
                "operationId": "getPhoneMedia",
                "summary": "A received media file, streamed from Meta (up to 100 MB)",
                "responses": {
                    "200": {
                        "description": "The file, with Meta's content type and length.",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "404": _error("No such phone in this organisation, or no such media."),
                    "413": _error("The file is over 100 MB (media_too_large)."),
                    "502": _error("Meta unreachable, or its download failed or left Meta."),
                    "503": _error("No Meta app configured."),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/v1/onboarding-links/{id}/recover": {
            "parameters": [LINK_ID],
            "post": {
                "operationId": "recoverOnboardingLink",
                "summary": "Finish a signup Meta reported finished (needs the system-user token)",
                "parameters": [IDEMPOTENCY],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("SyncRequest")}},
                },
                "responses": {
                    "200": _json(_ref("OnboardingLinkResponse"), "The link, as it is now."),
                    "400": _error("Invalid body."),
                    "404": _error("No such link in this organisation."),
                    "409": _error(
                        "Not recoverable (link_not_recoverable), no system-user token "
                        "(recovery_unavailable), or Idempotency-Key in use."
                    ),
                    "415": _error("Body is not JSON."),
                    "502": _error("Meta unreachable."),
                    **_COMMON_ERRORS,
                },
            },
        },
    }
