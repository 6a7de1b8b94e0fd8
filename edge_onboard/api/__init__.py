"""The customer's API: the ``/v1`` routes, API-key auth, idempotency, pagination, and the
OpenAPI document that describes them.
"""
