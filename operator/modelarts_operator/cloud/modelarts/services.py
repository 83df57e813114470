"""Real-time services (v1, through `call_api`): deploy a model, change it, stop, delete."""

from __future__ import annotations

from collections.abc import Callable, Collection

from modelarts_operator.cloud.errors import ErrorKind, register_codes
from modelarts_operator.cloud.modelarts.transport import Transport
from modelarts_operator.cloud.resources import Service, ServiceSpec
from modelarts_operator.cloud.retry import NO_RETRY

CODES = {
    "ModelArts.3502": ErrorKind.NOT_FOUND,  # service not found
    "ModelArts.3515": ErrorKind.CONFLICT,  # the model to deploy is still publishing
    "ModelArts.3520": ErrorKind.QUOTA,
    "ModelArts.3521": ErrorKind.QUOTA,
    "ModelArts.3522": ErrorKind.QUOTA,
}
register_codes(CODES)

# What `Service.matches` reports, by the part of the service an update rewrites.
CONFIG_CHANGES = frozenset({"model", "instanceCount"})
SCHEDULE_CHANGES = frozenset({"autoStop"})


class ServicesApi:
    def __init__(self, transport: Transport):
        self._t = transport

    def create(self, spec: ServiceSpec) -> str:
        """One deployment, never retried (use `ensure`); returns the service id. Carries the schedule."""
        return self._t.v1("create_service", "POST", "/v1/{project_id}/services", body=spec.body(),
                          policy=NO_RETRY)["service_id"]

    def get(self, service_id: str) -> Service:
        return Service.model_validate(self._t.v1("show_service", "GET", f"/v1/{{project_id}}/services/{service_id}"))

    def find(self, name: str) -> Service | None:
        data = self._t.v1("list_services", "GET", "/v1/{project_id}/services", query=[("service_name", name)])
        for item in data.get("services") or []:
            if item.get("service_name") == name:  # the service_name filter is a substring match
                return Service.model_validate(item)
        return None

    def ensure(self, spec: ServiceSpec, before_create: Callable[[], None] | None = None) -> tuple[Service, bool]:
        return self._t.ensure("service", spec.name, self.find, lambda: self.get(self.create(spec)), before_create)

    def update(self, service_id: str, spec: ServiceSpec, changes: Collection[str] | None = None) -> None:
        """Make the service as `spec` says: its configuration (model, instances) and its auto-stop schedule
        (an empty one clears it). `changes` (as `Service.matches` names them) limits the update to what
        differs, so a new schedule alone does not redeploy; None sends both."""
        body: dict = {}
        if changes is None or CONFIG_CHANGES & set(changes):
            body["config"] = spec.config()
        if changes is None or SCHEDULE_CHANGES & set(changes):
            body["schedule"] = spec.schedule()
        if body:
            self.put(service_id, body)

    def put(self, service_id: str, body: dict) -> None:
        """A raw update: `status` ("running"/"stopped"), `config`, `schedule`. ModelArts applies only the
        status when status and config are both sent."""
        self._t.v1("update_service", "PUT", f"/v1/{{project_id}}/services/{service_id}", body=body)

    def delete(self, service_id: str) -> bool:
        return self._t.gone_ok(lambda: self._t.v1("delete_service", "DELETE",
                                                  f"/v1/{{project_id}}/services/{service_id}"))

    def count(self) -> int:
        """How many services the project holds."""
        return self._t.v1("list_services", "GET", "/v1/{project_id}/services").get("total_count") or 0
