"""Which files the wheel holds, found rather than listed (metadata is in pyproject.toml).

The repo keeps the top-level folders the project was laid out with (`storage/`,
`config/`, `pages/`); installed, they live under the `edge_onboard` namespace so the
package never claims generic names like `storage`. Every folder below those roots is
a package, and every file in them that is not Python source is package data, so a new
module or page asset cannot be left out of the wheel by a forgotten list entry
(tests/test_packaging.py compares the wheel with the source tree).
"""

from __future__ import annotations

import os

from setuptools import find_namespace_packages, setup

# Installed name -> folder in the repo.
ROOTS = {
    "edge_onboard": "edge_onboard",
    "edge_onboard.storage": "storage",
    "edge_onboard.config": "config",
    "edge_onboard.pages": "pages",
}
SKIPPED = ("__pycache__", ".")  # name prefixes of folders and files never shipped


def _shipped(name: str) -> bool:
    return not name.startswith(SKIPPED) and not name.endswith((".pyc", ".pyo"))


def _layout() -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    package_data: dict[str, list[str]] = {}
    for name, folder in ROOTS.items():
        package_dir[name] = folder
        found = find_namespace_packages(where=folder, exclude=["*__pycache__*"])
        for package in [name, *(f"{name}.{sub}" for sub in found)]:
            if any(not _shipped(part) for part in package.split(".")):
                continue
            packages.append(package)
            path = os.path.join(folder, *package.split(".")[len(name.split(".")) :])
            data = sorted(
                entry
                for entry in os.listdir(path)
                if _shipped(entry)
                and not entry.endswith(".py")
                and os.path.isfile(os.path.join(path, entry))
            )
            if data:
                package_data[package] = data
    return packages, package_dir, package_data


packages, package_dir, package_data = _layout()
setup(packages=packages, package_dir=package_dir, package_data=package_data)
