#!/usr/bin/env python3
"""Fails when an artifact's version differs from the workspace's (Cargo.toml), or CHANGELOG.md
has no section for it. One version number, set in one place: see CHANGELOG.md."""

import json
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def pom_version(path: pathlib.Path) -> str | None:
    """The project's own version in a pom.xml (the one right after its artifactId)."""
    m = re.search(r"<artifactId>wirecore</artifactId>\s*<version>([^<]+)</version>", path.read_text())
    return m.group(1) if m else None


def main() -> int:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    want = cargo["workspace"]["package"]["version"]
    found = {
        "python/pyproject.toml": tomllib.loads((ROOT / "python/pyproject.toml").read_text())[
            "project"
        ]["version"],
        "node/package.json": json.loads((ROOT / "node/package.json").read_text())["version"],
        "bindings/kotlin/pom.xml": pom_version(ROOT / "bindings/kotlin/pom.xml"),
    }
    errors = [
        f"{path}: version {got!r}, but Cargo.toml [workspace.package] says {want!r}"
        for path, got in found.items()
        if got != want
    ]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    if not re.search(rf"^## {re.escape(want)}\b", changelog, re.M):
        errors.append(f"CHANGELOG.md: no '## {want}' section for the workspace version")
    for member in cargo["workspace"]["members"]:
        manifest = tomllib.loads((ROOT / member / "Cargo.toml").read_text())
        version = manifest.get("package", {}).get("version")
        if version is not None and version != {"workspace": True}:
            errors.append(f"{member}/Cargo.toml: set `version.workspace = true`, not {version!r}")
    for e in errors:
        print(f"check-version: {e}", file=sys.stderr)
    if not errors:
        print(f"check-version: every artifact is at {want}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
