"""axe-core, the accessibility checker, run inside a page of the browser tests. The
version and folder are the ones .ci/install-services.sh installs it to."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from tests import services

_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "install-services.sh"


@functools.cache
def axe_source() -> str:
    version = re.search(r"^AXE_CORE_VERSION=(\S+)$", _SCRIPT.read_text(), re.M)
    assert version is not None, "AXE_CORE_VERSION is not set in .ci/install-services.sh"
    cache = Path(os.environ.get("EDGE_TEST_CACHE") or Path.home() / ".cache" / "edge-onboard")
    path = cache / f"axe-core-{version.group(1)}" / "node_modules" / "axe-core" / "axe.min.js"
    if not path.exists():
        services.unavailable(f"axe-core not found at {path} (bash .ci/setup installs it)")
    return path.read_text()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every violation axe finds in the page as it is now, whatever its impact."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())  # through DevTools: the page's CSP does not apply
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                          nodes: v.nodes.map((n) => n.target.join(' '))}))"""
    )
    return found
