"""The ``edge-onboard`` commands beyond serving (edge_onboard/cli.py parses and
dispatches): ``keys`` (straight in storage), and ``trigger`` and ``listen``, which work
against any deployment through its public API (``remote``)."""
