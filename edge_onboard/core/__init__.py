"""What every area stands on: time, encryption, errors and responses, validation, URL rules,
the hot layer and its Redis keys, rate limits, languages, logs and the ASGI middleware.

Imports nothing of the service above it; only `storage` and `config`.
"""
