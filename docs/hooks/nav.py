"""MkDocs hook: the navigation, from the folders. Every docs/guides/*.md and
docs/reference/*.md is listed, the ones a newcomer needs first in FIRST's order, then
the rest by name, so a page added to either folder appears without editing mkdocs.yml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig

FIRST = {
    "guides": [
        "quickstart.md",
        "test-mode-and-cli.md",
        "test-mode.md",
        "verifying-webhooks.md",
        "going-live.md",
        "hosted-page.md",
        "webhooks.md",
        "coexistence.md",
        "recovery.md",
        "deploy-and-scale.md",
        "deploy-regions.md",
    ],
    # openapi.md is generated at build time (openapi_reference.py).
    "reference": ["openapi.md", "api.md", "configuration.md", "security.md"],
}
SECTIONS = {"guides": "Guides", "reference": "Reference"}


def _pages(docs: Path, folder: str) -> list[str]:
    present = {p.name for p in (docs / folder).glob("*.md")}
    if folder == "reference":
        present.add("openapi.md")
    ordered = [name for name in FIRST[folder] if name in present]
    ordered += sorted(present - set(ordered))
    return [f"{folder}/{name}" for name in ordered]


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    docs = Path(config["docs_dir"])
    nav: list[Any] = [{"Home": "index.md"}]
    nav += [{title: _pages(docs, folder)} for folder, title in SECTIONS.items()]
    config["nav"] = nav
    return config
