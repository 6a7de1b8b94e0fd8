"""Operation descriptions, by operationId: what an SDK's documentation says beyond the
summary. An operation that writes its own ``description`` keeps it."""

from __future__ import annotations

DESCRIPTIONS: dict[str, str] = {
    # Onboarding links
    "createOnboardingLink": "Answers the link with its hostedUrl: send the end-user there. "
    "Retry with the same Idempotency-Key to get the same link back.",
    "listOnboardingLinks": "Filter by status or externalId; page with page, or with the "
    "startingAfter and endingBefore cursors.",
    "getOnboardingLink": "A completed link carries the connected phone and WABA ids; a "
    "failed attempt leaves it pending with lastError.",
    "deleteOnboardingLink": "Only a pending link can be deleted; its hosted page then "
    "answers 410 and the API 404.",
    "recoverOnboardingLink": "For a link whose page never reported back but Meta says the "
    "signup finished (recoverable: true); needs the system-user token configured.",
    # Phones
    "listPhones": "Every number connected through this organisation's links or WABA syncs.",
    "getPhone": "Its status says whether it can be used: connected, "
    "pending_verification, registration_failed or disconnected.",
    "getPhoneHealth": "Asks Meta for the number's health and the WABA's webhook "
    "subscription; capabilities.canReceiveMessages is the safe-to-use signal, issues "
    "say what to fix.",
    "requestVerificationCode": "For a number whose signup finished unverified "
    "(pending_verification): Meta sends a code by SMS or voice call.",
    "verifyPhone": "Checks the code with Meta, then registers the number on the Cloud API.",
    # Messages
    "sendMessage": "A text or an approved template, from a connected, registered number. "
    "Meta's answer is synchronous; delivery arrives later as message.* events.",
    "getPhoneMedia": "The file of a received image, video, audio, document or sticker, "
    "by the media.id of its message event.",
    # WABAs
    "listWabas": "Every WhatsApp Business Account a signup connected.",
    "getWaba": "With the ids of its connected numbers.",
    "syncWabaPhones": "Connects the numbers the business added to the WABA at Meta after "
    "its signup, and sends their phone_number.connected events.",
    # Outgoing webhooks
    "createOutgoingWebhook": "Events are signed per Standard Webhooks with the secret, "
    "which only this response shows. Scope it to one WABA with wabaId.",
    "listOutgoingWebhooks": "Newest first.",
    "getOutgoingWebhook": "Without its secret.",
    "updateOutgoingWebhook": "A webhook disabled after failing deliveries is re-enabled "
    "with status: active.",
    "deleteOutgoingWebhook": "No more events are sent to it.",
    "listWebhookDeliveries": "Each delivery with its status and every attempt.",
    "rotateOutgoingWebhookSecret": "The new secret is shown only here; events are signed "
    "with both secrets for 24 hours, so the endpoint can switch without losing one.",
    "retryWebhookDelivery": "Queues another attempt now (409 while the webhook is disabled).",
    # Events
    "listEventTypes": "Every event type an outgoing webhook can subscribe to, with its "
    "description; each payload has a named schema (PhoneNumberConnectedEvent, ...).",
    # Organization
    "getOrganization": "Its branding is what the hosted page shows, in both modes; any "
    "key reads it.",
    "updateOrganization": "Display name, brand colour, support email and support, "
    "privacy and terms links; null clears one. A live key only: live pages show it.",
    "putOrganizationLogo": "The hosted page then shows it, served from this service's "
    "origin. A live key only: live pages show it.",
    "deleteOrganizationLogo": "The hosted page then shows no logo. A live key only.",
    # Hosted page
    "hostedSignupPage": "In the link's locale (else the browser's), with the "
    "organisation's branding; starts Meta's Embedded Signup.",
    "hostedSignupSession": "The page reports Meta's session message as soon as it "
    "arrives, so a signup can be recovered if the tab closes.",
    "hostedSignupCallback": "The page reports the code (or the error) Embedded Signup "
    "gave; the service exchanges the code and connects the WABA and number.",
    "staticAsset": "Served with an ETag; If-None-Match answers 304.",
    "brandLogo": "Cached for good: a new logo has a new URL.",
    "favicon": "Cacheable; a conditional request can answer 304.",
    # Meta webhooks
    "metaAppWebhook": "Meta's account_update and phone number notices for the app; "
    "answered 200 so Meta does not retry what the service cannot use.",
    "metaAppWebhookHandshake": "Answers hub.challenge when hub.verify_token is the configured one.",
    "phoneWebhook": "Meta's messages and statuses for one connected number, turned into "
    "events (message.*, contact.changed, phone_number.error).",
    "phoneWebhookHandshake": "Answers hub.challenge when hub.verify_token is the configured one.",
    # Events
    "listEvents": "Newest first, kept EDGE_EVENT_RETENTION_DAYS (30 by default). Filter by "
    "type (comma-separated, * as a wildcard: message.*) and created[gte]/created[lte]; page "
    "with the startingAfter and endingBefore cursors.",
    "getEvent": "The body exactly as it was delivered to webhook endpoints.",
    "recoverOutgoingWebhook": "Re-sends, in the background, the endpoint's failed deliveries "
    "created in [since, until): each event at most once, however often it is called.",
    # Service
    "root": "A browser gets a short page; Accept: application/json gets the same as JSON.",
    "healthz": "200 while the process answers.",
    "readyz": "503 while storage or Redis cannot be reached.",
}
