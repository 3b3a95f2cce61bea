"""Acme's job kinds. `conveyor worker --jobs acme_jobs` loads what the submodules imported
here declare."""

from acme_jobs import invoices, reports

__all__ = ["invoices", "reports"]
