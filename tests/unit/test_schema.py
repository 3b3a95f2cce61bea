"""schema.graphql is generated from the code and committed: fail on drift."""

from conveyor import kinds
from conveyor.api.schema import sdl
from tests.support import ROOT


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == sdl(kinds.load(kinds.DEMO_MODULES)), (
        "schema.graphql is stale: run `conveyor export-schema`"
    )


def test_contract_names_other_clients_rely_on() -> None:
    text = sdl(kinds.load(kinds.DEMO_MODULES))
    for fragment in (
        "submitJob(input: SubmitJobInput!): SubmitJobResult!",
        "union SubmitJobResult = Job | InvalidInput | UnknownJobKind | Conflict",
        "interface UserError",
        "jobEvents(jobId: ID!, after: Int = null): JobEvent!",
        "jobKinds: [JobKind!]!",
        # Typed GraphQL per kind (ADR-0020): the names the issue fixed.
        "submitDemoSleep(input: DemoSleepInput!, options: SubmitOptions): SubmitJobResult!",
        "submitDemoNoop(options: SubmitOptions): SubmitJobResult!",
        "input DemoSleepInput {",
        "demoSleepResult: DemoSleepResult",
    ):
        assert fragment in text
