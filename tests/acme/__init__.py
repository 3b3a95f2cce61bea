"""A team's own job package, as it would live outside this repository: the typed-GraphQL
tests build schemas from it (`REGISTRY`), as `conveyor export-schema` does for a user."""
