"""`conveyor dev` (what `make run` runs) as a new user meets it: a quiet start, a banner that is
true when printed, one admin key across runs, and Ctrl-C that stops everything quietly at any
moment. Real processes, signalled as a terminal does (SIGINT to the whole process group)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests import support


class Dev:
    """A `conveyor dev` process in its own session (as a shell's foreground job), its output
    collected line by line."""

    def __init__(self, env: support.Env, cwd: Path, port: int) -> None:
        environ = env.environ(LOG_FORMAT="text", SECRET_KEY="")  # the built-in dev key
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "dev", "--port", str(port)],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            assert self.popen.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < deadline, f"no {text!r} after {timeout}s:\n" + "\n".join(
                self.lines
            )
            time.sleep(0.05)

    def ctrl_c(self) -> int:
        os.killpg(self.popen.pid, signal.SIGINT)  # what the terminal does
        code = self.popen.wait(60)
        self._reader.join(10)
        assert self.popen.stdout is not None
        self.popen.stdout.close()
        return code

    def output(self) -> str:
        return "\n".join(self.lines)


def test_a_first_run_is_quiet_its_banner_true_and_its_key_kept(
    env: support.Env, tmp_path: Path
) -> None:
    port = support.free_port()
    dev = Dev(env, tmp_path, port)
    try:
        dev.wait_for("Conveyor is running")
        # Printed only once the API answers (and the worker has registered).
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        key_line = dev.wait_for("Admin key (kept in .conveyor/dev-admin-key")
    finally:
        code = dev.ctrl_c()
    output = dev.output()
    assert code == 0, output
    assert "Traceback" not in output
    warnings = [line for line in output.splitlines() if " WARNING " in line]
    assert warnings == [line for line in warnings if "SECRET_KEY is not set" in line], output
    assert len(warnings) == 1, output
    assert "deprecated" not in output
    key = key_line.rsplit(" ", 1)[-1]
    kept = tmp_path / ".conveyor" / "dev-admin-key"
    assert kept.read_text().strip() == key
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    again = Dev(env, tmp_path, port)
    try:
        assert again.wait_for("Admin key (kept in").rsplit(" ", 1)[-1] == key
        response = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "{ me { role } }"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        )
        assert response.json()["data"]["me"]["role"] == "ADMIN"
    finally:
        assert again.ctrl_c() == 0, again.output()


def test_ctrl_c_before_anything_runs_exits_quietly(env: support.Env, tmp_path: Path) -> None:
    dev = Dev(env, tmp_path, support.free_port())
    dev.wait_for("SECRET_KEY is not set")  # its first line: the imports are done
    assert dev.ctrl_c() == 130
    assert "Traceback" not in dev.output()
    assert "Conveyor is running" not in dev.output()
