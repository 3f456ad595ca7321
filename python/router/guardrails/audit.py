"""Guardrail triggers in the audit log: one event per request, category, type, direction and action, with a
count. Never the matched value: the scanner's findings carry only (category, type), and that is all an event
is built from.

Counts are summed over the whole request (a stream finds values chunk by chunk) and written with the
request's usage row (its `guardrails` column), which the background writer inserts anyway: a masked request
then costs no audit row and no index entries of its own, only a short JSON text. The audit log reads them
back as `guardrail.triggered` events (`store.governance.query_audit`), next to the events of `audit_log`.

`Triggers` (Rust, `rust/src/scan/triggers.rs`) holds one request's counts; `Policy.verdict` fills it and the
worker's findings metric in one call (`Actions.record`).
"""

from .._core import Triggers

__all__ = ["Triggers"]
