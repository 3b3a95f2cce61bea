"""The dashboard and the explorer in a real browser (Debian's Chromium, driven by
playwright-core from frontend/e2e/), against a real API + worker started here."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess

import pytest

from tests import support

FRONTEND = support.ROOT / "frontend"
#: How long the browser suite may take; pytest's own limit (pyproject: 300 s) is raised above it.
SUITE_TIMEOUT_SECONDS = 900


def _run_browser_suite(base: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", "run", "--silent", "test:e2e"],
        cwd=FRONTEND,
        env={**os.environ, "BASE_URL": base, "API_KEY": key},
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_SECONDS,
    )


# The suite's own limit plus a minute for starting the API and worker, so a hung suite
# fails with the subprocess timeout rather than pytest-timeout's stack dump.
@pytest.mark.timeout(SUITE_TIMEOUT_SECONDS + 60)
async def test_the_dashboard_and_explorer_work_in_a_browser(
    stack: support.Stack, env: support.Env
) -> None:
    assert (FRONTEND / "dist" / "index.html").exists(), "build the dashboard first: make frontend"
    assert shutil.which("chromium"), "install Debian's chromium (apt-get install chromium)"
    _, base = stack.serve()
    stack.worker(LEASE_SECONDS="3", MAINTENANCE_INTERVAL_SECONDS="0.2")
    key = env.create_key("browser", admin=True)
    done = await asyncio.to_thread(_run_browser_suite, base, key)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped) (\d+)$", output, re.M)}
    assert counts.get("pass", 0) > 0, output[-3000:]
    assert counts.get("fail") == 0, output[-3000:]
    assert counts.get("skipped", 0) == 0, output[-3000:]
