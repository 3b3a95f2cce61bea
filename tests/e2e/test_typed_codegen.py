"""GraphQL Code Generator turns the schema generated for a team's own kinds into TypeScript
types a compiler holds clients to: inputs and results are typed, not `unknown` (ADR-0020).

Uses the dashboard's pinned toolchain (frontend/node_modules: `make setup` installs it).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conveyor.api.schema import sdl
from tests.acme.jobs import REGISTRY
from tests.support import ROOT

FRONTEND = ROOT / "frontend"
BIN = FRONTEND / "node_modules" / ".bin"

USE = """
import type { ReportsGenerateInput, ReportsGenerateResult, SubmitOptions } from './types';
export const input: ReportsGenerateInput = {
  accountId: 7, format: 'PDF', mode: 'thorough', rowLimit: 5,
  recipients: [{ email: 'ops@example.com', displayName: null }],
};
export const options: SubmitOptions = { idempotencyKey: 'k', priority: 'HIGH' };
export const rows = (r: ReportsGenerateResult): number => r.rows + r.sections[0].rows;
"""

MISTAKES = """
import type { ReportsGenerateInput, ReportsGenerateResult } from './types';
export const input: ReportsGenerateInput = { accountId: 'seven', format: 'DOCX' };
export const when = (r: ReportsGenerateResult): number => r.generatedAt;
"""


def _tsc(tmp: Path, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "tsc"),
            "--strict",
            "--noEmit",
            "--target",
            "es2022",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            str(tmp / name),
        ],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_codegen_types_a_team_package_without_unknown_payloads(tmp_path: Path) -> None:
    assert (BIN / "graphql-codegen").exists(), "run `make setup` (frontend/node_modules)"
    (tmp_path / "schema.graphql").write_text(sdl(REGISTRY))
    config = {
        "schema": str(tmp_path / "schema.graphql"),
        "generates": {
            str(tmp_path / "types.ts"): {
                "plugins": ["typescript"],
                "config": {
                    "enumsAsTypes": True,
                    "scalars": {"DateTime": "string", "JSON": "unknown", "Long": "number"},
                },
            }
        },
    }
    (tmp_path / "codegen.json").write_text(json.dumps(config))
    subprocess.run(
        [str(BIN / "graphql-codegen"), "--config", str(tmp_path / "codegen.json")],
        cwd=FRONTEND,
        check=True,
        capture_output=True,
        timeout=120,
    )
    types = (tmp_path / "types.ts").read_text()
    declared = re.search(r"export type ReportsGenerateInput = \{(.*?)\};", types, re.S)
    assert declared is not None, types
    # Every field has its own type; only the model's free-form dict is JSON.
    assert "accountId: Scalars['Int']['input'];" in declared.group(1)
    assert "format?: ReportsGenerateReportFormat;" in declared.group(1)
    assert "recipients?: InputMaybe<Array<ReportsGenerateRecipientInput>>;" in declared.group(1)
    json_fields = re.findall(r"(\w+)\??: [^;]*Scalars\['JSON'\]", declared.group(1))
    assert json_fields == ["labels"]

    (tmp_path / "use.ts").write_text(USE)
    compiled = _tsc(tmp_path, "use.ts")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    (tmp_path / "mistakes.ts").write_text(MISTAKES)
    refused = _tsc(tmp_path, "mistakes.ts")
    assert refused.returncode != 0
    assert "Type 'string' is not assignable to type 'number'" in refused.stdout
    assert "'\"DOCX\"' is not assignable" in refused.stdout
    assert refused.stdout.count("error TS") == 3, refused.stdout
