"""Models (v1, through `call_api`): import a trained package from OBS, watch it publish, delete it.

No model-specific codes: a missing model is ModelArts.0102 with HTTP 404, which the status classifies.
"""

from __future__ import annotations

from collections.abc import Callable

from modelarts_operator.cloud.modelarts.transport import Transport
from modelarts_operator.cloud.resources import Model, ModelSpec
from modelarts_operator.cloud.retry import NO_RETRY


class ModelsApi:
    def __init__(self, transport: Transport):
        self._t = transport

    def create(self, spec: ModelSpec) -> str:
        """One import, never retried (use `ensure`); returns the model id."""
        return self._t.v1("create_model", "POST", "/v1/{project_id}/models", body=spec.body(), policy=NO_RETRY)[
            "model_id"]

    def get(self, model_id: str) -> Model:
        return Model.model_validate(self._t.v1("show_model", "GET", f"/v1/{{project_id}}/models/{model_id}"))

    def find(self, name: str, version: str | None = None) -> Model | None:
        query = [("model_name", name), ("exact_match", "true")] + ([("model_version", version)] if version else [])
        data = self._t.v1("list_models", "GET", "/v1/{project_id}/models", query=query)
        for item in data.get("models") or []:
            if item.get("model_name") == name and (version is None or item.get("model_version") == version):
                return Model.model_validate(item)
        return None

    def ensure(self, spec: ModelSpec, before_create: Callable[[], None] | None = None) -> tuple[Model, bool]:
        return self._t.ensure("model", spec.name, lambda n: self.find(n, spec.version),
                              lambda: self.get(self.create(spec)), before_create)

    def delete(self, model_id: str) -> bool:
        return self._t.gone_ok(lambda: self._t.v1("delete_model", "DELETE", f"/v1/{{project_id}}/models/{model_id}"))

    def count(self) -> int:
        """How many models (model versions) the project holds."""
        return self._t.v1("list_models", "GET", "/v1/{project_id}/models").get("total_count") or 0
