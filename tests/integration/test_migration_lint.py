"""The migration lint (`migrations/lint.py`, in `make check`): the committed chain is clean,
ADR-0016's recipes lint clean as new revisions, unsafe ones fail with the script named, and
the config refuses a rule switched off without a reason. No database: revisions are rendered
offline and linted by the real squawk."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests import support

HEADER = '''"""{message}"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None
code_compatible_from = None

'''

#: ADR-0016's expand steps for a new table and a new required column on a busy table: each
#: its own revision, as the ADR says.
RECIPES = {
    "expand": """
def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("steps", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
    )
    op.add_column("jobs", sa.Column("workflow_id", sa.UUID(), nullable=True))
    op.add_column(
        "jobs", sa.Column("weight", sa.BigInteger(), server_default=sa.text("1"), nullable=False)
    )
    op.create_foreign_key(
        op.f("fk_jobs_workflow_id_workflows"), "jobs", "workflows", ["workflow_id"], ["id"],
        postgresql_not_valid=True,
    )
    op.create_check_constraint(
        op.f("ck_jobs_workflow_id_not_null"), "jobs", "workflow_id IS NOT NULL",
        postgresql_not_valid=True,
    )


def downgrade() -> None:
    op.drop_column("jobs", "weight")
    op.drop_column("jobs", "workflow_id")
    op.drop_table("workflows")
""",
    "index": """
def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("SET statement_timeout = '30min'")
        op.create_index(
            "ix_jobs_workflow_id", "jobs", ["workflow_id"],
            postgresql_concurrently=True, if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_jobs_workflow_id", table_name="jobs", postgresql_concurrently=True, if_exists=True
        )
""",
    "enforce": """
def upgrade() -> None:
    op.execute("ALTER TABLE jobs VALIDATE CONSTRAINT fk_jobs_workflow_id_workflows")
    op.execute("ALTER TABLE jobs VALIDATE CONSTRAINT ck_jobs_workflow_id_not_null")
    op.alter_column("jobs", "workflow_id", nullable=False)


def downgrade() -> None:
    op.alter_column("jobs", "workflow_id", nullable=True)
""",
}

UNSAFE = """
def upgrade() -> None:
    op.create_index("ix_jobs_progress_message", "jobs", ["progress_message"])
    op.add_column("jobs", sa.Column("note", sa.String(50), nullable=True))
    op.drop_column("jobs", "cancel_requested_at")


def downgrade() -> None:
    pass
"""


def _lint_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "migration_lint", support.ROOT / "migrations/lint.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


lint = _lint_module()


def _chain(tmp_path: Path, extra: dict[str, str]) -> Path:
    """A copy of the committed migrations with `extra` revisions on top of the head."""
    target = tmp_path / "migrations"
    source = support.ROOT / "migrations"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    scripts = lint.ScriptDirectory(str(target))
    down = scripts.get_current_head()
    for n, (name, body) in enumerate(extra.items(), start=1):
        revision = f"9{n:03d}"
        header = HEADER.format(message=name, revision=revision, down=down)
        (target / "versions" / f"{revision}_{name}.py").write_text(header + body)
        down = revision
    return target


def test_the_committed_chain_lints_clean() -> None:
    findings, stale, suppressed = lint.lint()
    assert findings == []
    assert stale == []
    assert suppressed > 0  # 0001 and 0002's findings, each kept with its reason


def test_the_adr_recipes_lint_clean_as_new_revisions(tmp_path: Path) -> None:
    migrations = _chain(tmp_path, RECIPES)
    findings, stale, _ = lint.lint(migrations / "squawk.toml", migrations)
    assert findings == []
    assert stale == []


def test_an_unsafe_new_revision_fails_and_names_its_script(tmp_path: Path) -> None:
    migrations = _chain(tmp_path, {"unsafe": UNSAFE})
    findings, _, _ = lint.lint(migrations / "squawk.toml", migrations)
    rules = {f.rule for f in findings}
    assert {"require-concurrent-index-creation", "prefer-text-field", "ban-drop-column"} <= rules
    assert {f.source for f in findings} == {"migrations/versions/9001_unsafe.py"}
    assert {f.revision for f in findings} == {"9001"}


def test_a_rule_switched_off_with_its_reason_is_not_reported(tmp_path: Path) -> None:
    migrations = _chain(tmp_path, {"unsafe": UNSAFE})
    config = migrations / "squawk.toml"
    config.write_text(
        config.read_text().replace(
            "[rules_off]\n",
            '[rules_off]\n"prefer-text-field" = "a reason"\n',
        )
    )
    findings, _, _ = lint.lint(config, migrations)
    assert "prefer-text-field" not in {f.rule for f in findings}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("[rules_off]\n", '[rules_off]\n"ban-drop-column" = ""\n'),
            "rules_off.ban-drop-column needs a reason",
        ),
        (('revision = "0001"', 'revision = "0042"'), "revision '0042' is not a migration"),
        (('reason = """Every table', 'xreason = """Every table'), "#1: needs a reason"),
    ],
    ids=["rule-off-without-reason", "unknown-revision", "historical-without-reason"],
)
def test_the_config_refuses_a_suppression_without_a_reason(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    migrations = _chain(tmp_path, {})
    config = migrations / "squawk.toml"
    text = config.read_text()
    assert edit[0] in text
    config.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(lint.ConfigError, match=message):
        lint.lint(config, migrations)


def test_a_suppression_that_matches_nothing_is_reported(tmp_path: Path) -> None:
    migrations = _chain(tmp_path, {})
    config = migrations / "squawk.toml"
    config.write_text(
        config.read_text()
        + '\n[[historical]]\nrevision = "0003"\nrules = ["ban-drop-column"]\nreason = "r"\n'
    )
    findings, stale, _ = lint.lint(config, migrations)
    assert findings == []
    assert [(s.revision, s.rule) for s in stale] == [("0003", "ban-drop-column")]
