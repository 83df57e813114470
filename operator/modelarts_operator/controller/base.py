"""The contract of a kind's controller: what the runner, the Kopf wiring and the guard tests rely on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from modelarts_operator.api.conditions import Reason
from modelarts_operator.api.kinds import Kind
from modelarts_operator.cloud.errors import ErrorKind
from modelarts_operator.controller.context import Context, Outcome, Resource

# Reasons the runner sets for any kind (failures it maps, references, deletion).
COMMON_REASONS = frozenset({
    Reason.SYNCED, Reason.INVALID_SPEC, Reason.WAITING_FOR_DEPENDENCY, Reason.DEPENDENCY_FAILED,
    Reason.CREDENTIALS_MISSING, Reason.INVALID_CREDENTIALS, Reason.UNAUTHORIZED, Reason.CLOUD_UNAVAILABLE,
    Reason.QUOTA_EXCEEDED, Reason.CLOUD_REJECTED, Reason.KUBERNETES_ERROR, Reason.INTERNAL_ERROR,
    Reason.DELETE_FAILED,
})


class KindController:
    """One kind: its API types (through `kind`), how it reconciles and finalizes, and the Ready
    reasons it sets itself. Subclasses are registered in controller/registry.py."""

    kind: ClassVar[Kind]
    reasons: ClassVar[frozenset[Reason]]  # the Ready/Synced reasons this kind's own code sets
    cloud_codes: ClassVar[Mapping[str, ErrorKind]]  # the cloud error codes of the services it calls

    def reconcile(self, res: Resource, ctx: Context) -> Outcome:
        """Bring the cloud side to the spec; fill res.status; raise a ReconcileError to stop with a reason."""
        raise NotImplementedError

    def finalize(self, res: Resource, ctx: Context) -> str | None:
        """Delete the cloud side; None while waiting for it to go, a summary when done."""
        raise NotImplementedError
