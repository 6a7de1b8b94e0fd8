"""Events out to customers: the event catalog, outgoing endpoints, the event log, the
delivery queue, the engine that retries for days and the sender with its SSRF rules.
"""
