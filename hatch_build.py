"""Build hook: the built dashboard (`frontend/dist`, `make frontend`) goes into the wheel as
`conveyor/_frontend`, so an installed Conveyor serves `/` and `/graphiql` (ADR-0019).

Editable installs (`uv sync`) skip it: they run from the checkout, where conveyor/main.py finds
`frontend/dist` itself, and `make setup` installs before it builds the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        dist = Path(self.root) / "frontend" / "dist"
        if not (dist / "index.html").is_file():
            raise RuntimeError(
                f"{dist} is not built: run `make frontend` before building a wheel "
                "(an installed Conveyor serves the dashboard from inside the package)"
            )
        build_data["force_include"][str(dist)] = "conveyor/_frontend"
