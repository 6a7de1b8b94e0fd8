"""Meta's WABA-level webhook fields as typed, camelCased payloads.

``account_update`` (every event, with its ``*_info`` details), ``account_review_update``,
``business_capability_update``, the number fields Meta posts for the WABA
(``phone_number_quality_update``, ``phone_number_name_update``,
``business_username_update``, ``account_alerts``, ``security``) and the four template
fields. Like ``message_model``, each key is declared once, as (Meta key, our key, kind):
the reader and the published schema come from the same declaration. Keys are Meta's,
camelCased, always present (null when not sent); Meta's value rides along under ``raw``.

``change(field, value)`` is what a ``waba.updated`` or ``phone_number.updated`` carries
under ``change``; ``template(value)`` is a ``template.updated`` payload.
"""

from __future__ import annotations

from typing import Any

from edge_onboard.meta.readers import (
    ID,
    NUM,
    STR,
    STRS,
    TIME,
    Field,
    Node,
    Schema,
    Unusable,
    objects_of,
    read_fields,
    shape,
)

_TYPED: tuple[Field, ...] = (("type", "type", STR),)
# account_update, by the *_info object each event carries.
ACCOUNT_UPDATE: tuple[Field, ...] = (
    ("event", "event", STR),
    (
        "waba_info",
        "wabaInfo",
        shape(
            ("waba_id", "wabaId", STR),
            ("owner_business_id", "ownerBusinessId", STR),
            ("partner_app_id", "partnerAppId", STR),
            ("solution_id", "solutionId", STR),
            ("solution_partner_business_ids", "solutionPartnerBusinessIds", STRS),
            ("ad_account_linked", "adAccountLinked", STR),
        ),
    ),
    (
        "ban_info",
        "banInfo",
        shape(("waba_ban_state", "wabaBanState", STR), ("waba_ban_date", "wabaBanDate", STR)),
    ),
    (
        "restriction_info",
        "restrictionInfo",
        objects_of(
            ("restriction_type", "restrictionType", STR), ("expiration", "expiration", TIME)
        ),
    ),
    ("violation_info", "violationInfo", shape(("violation_type", "violationType", STR))),
    (
        "lock_info",
        "lockInfo",
        shape(("expiration", "expiration", TIME), ("reason", "reason", STR)),
    ),
    (
        "disconnection_info",
        "disconnectionInfo",
        shape(("reason", "reason", STR), ("initiated_by", "initiatedBy", STR)),
    ),
    (
        "partner_client_certification_info",
        "partnerClientCertificationInfo",
        shape(
            ("client_business_id", "clientBusinessId", STR),
            ("status", "status", STR),
            ("rejection_reasons", "rejectionReasons", STRS),
        ),
    ),
    (
        "volume_tier_info",
        "volumeTierInfo",
        shape(
            ("tier_update_time", "tierUpdateTime", TIME),
            ("pricing_category", "pricingCategory", STR),
            ("tier", "tier", STR),
            ("effective_month", "effectiveMonth", STR),
            ("region", "region", STR),
        ),
    ),
    (
        "auth_international_rate_eligibility",
        "authInternationalRateEligibility",
        shape(
            ("start_time", "startTime", TIME),
            (
                "exception_countries",
                "exceptionCountries",
                objects_of(("country_code", "countryCode", STR), ("start_time", "startTime", TIME)),
            ),
        ),
    ),
    ("country", "country", STR),
)
# account_review_update and business_capability_update.
REVIEW: tuple[Field, ...] = (("decision", "decision", STR),)
CAPABILITY: tuple[Field, ...] = (
    ("max_daily_conversations_per_business", "maxDailyConversationsPerBusiness", NUM),
    ("max_daily_conversation_per_phone", "maxDailyConversationPerPhone", NUM),
    ("max_phone_numbers_per_business", "maxPhoneNumbersPerBusiness", NUM),
    ("max_phone_numbers_per_waba", "maxPhoneNumbersPerWaba", NUM),
)
# Fields about one of the WABA's numbers (its display number names it).
PHONE_CHANGE: tuple[Field, ...] = (
    ("display_phone_number", "displayPhoneNumber", STR),
    ("current_limit", "currentLimit", STR),
    ("old_limit", "oldLimit", STR),
    ("max_daily_conversation_per_phone", "maxDailyConversationPerPhone", NUM),
    ("decision", "decision", STR),
    ("requested_verified_name", "requestedVerifiedName", STR),
    ("rejection_reason", "rejectionReason", STR),
    ("username", "username", STR),
    ("status", "status", STR),
    ("entity_type", "entityType", STR),
    ("entity_id", "entityId", STR),
    ("alert_severity", "alertSeverity", STR),
    ("alert_status", "alertStatus", STR),
    ("alert_type", "alertType", STR),
    ("alert_description", "alertDescription", STR),
    ("requester", "requester", STR),
)
# The four template fields.
TEMPLATE: tuple[Field, ...] = (
    ("event", "event", STR),
    ("message_template_id", "messageTemplateId", ID),
    ("message_template_name", "messageTemplateName", STR),
    ("message_template_language", "messageTemplateLanguage", STR),
    ("message_template_category", "messageTemplateCategory", STR),
    ("reason", "reason", STR),
    (
        "rejection_info",
        "rejectionInfo",
        shape(("reason", "reason", STR), ("recommendation", "recommendation", STR)),
    ),
    ("disable_info", "disableInfo", shape(("disable_date", "disableDate", TIME))),
    (
        "other_info",
        "otherInfo",
        shape(("title", "title", STR), ("description", "description", STR)),
    ),
    ("previous_quality_score", "previousQualityScore", STR),
    ("new_quality_score", "newQualityScore", STR),
    ("previous_category", "previousCategory", STR),
    ("new_category", "newCategory", STR),
    ("correct_category", "correctCategory", STR),
    ("category_update_timestamp", "categoryUpdateTimestamp", TIME),
    ("message_template_element", "messageTemplateElement", STR),
    ("message_template_title", "messageTemplateTitle", shape(*_TYPED, ("text", "text", STR))),
    ("message_template_footer", "messageTemplateFooter", shape(("text", "text", STR))),
    (
        "message_template_buttons",
        "messageTemplateButtons",
        objects_of(
            ("message_template_button_type", "messageTemplateButtonType", STR),
            ("message_template_button_text", "messageTemplateButtonText", STR),
            ("message_template_button_url", "messageTemplateButtonUrl", STR),
            ("message_template_button_phone_number", "messageTemplateButtonPhoneNumber", STR),
        ),
    ),
)
TEMPLATE_FIELDS = frozenset(
    {
        "message_template_status_update",
        "message_template_quality_update",
        "message_template_components_update",
        "template_category_update",
    }
)
# Number fields Meta posts at the WABA level: phone_number.updated for the number named.
PHONE_FIELDS = frozenset(
    {
        "phone_number_quality_update",
        "phone_number_name_update",
        "business_username_update",
        "account_alerts",
        "security",
    }
)
_BY_FIELD: dict[str, tuple[Field, ...]] = {
    "account_update": ACCOUNT_UPDATE,
    "account_review_update": REVIEW,
    "business_capability_update": CAPABILITY,
    **dict.fromkeys(PHONE_FIELDS, PHONE_CHANGE),
}
KNOWN_FIELDS = frozenset(_BY_FIELD) | TEMPLATE_FIELDS


def _object(fields: tuple[Field, ...]) -> Schema:
    return {
        "type": "object",
        "required": [out for _, out, _ in fields],
        "properties": {out: kind.schema for _, out, kind in fields},
    }


def _union(*groups: tuple[Field, ...]) -> tuple[Field, ...]:
    seen: dict[str, Field] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item[1], item)
    return tuple(seen.values())


# waba.updated's ``change``: every key of the WABA-level fields (null where not sent).
WABA_CHANGE = _union(ACCOUNT_UPDATE, REVIEW, CAPABILITY)
CHANGE_SCHEMAS: dict[str, Schema] = {
    "waba.updated": {"anyOf": [_object(WABA_CHANGE), {"type": "null"}]},
    "phone_number.updated": {"anyOf": [_object(PHONE_CHANGE), {"type": "null"}]},
}
TEMPLATE_PROPERTIES: dict[str, Schema] = {out: kind.schema for _, out, kind in TEMPLATE}


def change(bad: Unusable, field: str, value: Node, path: str) -> dict[str, Any] | None:
    """The typed ``change`` of a WABA-level ``field`` (None: not one we type)."""
    if field in PHONE_FIELDS:
        return read_fields(bad, value, PHONE_CHANGE, path)
    if field in _BY_FIELD:
        return read_fields(bad, value, WABA_CHANGE, path)
    return None


def template(bad: Unusable, value: Node, path: str) -> dict[str, Any]:
    """A template field's typed keys (one schema for the four of them)."""
    return read_fields(bad, value, TEMPLATE, path)
