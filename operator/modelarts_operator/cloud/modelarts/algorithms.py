"""Algorithms (v2, the SDK's own methods): the training code's folder, boot file and engine."""

from __future__ import annotations

from collections.abc import Callable

from modelarts_operator.cloud.errors import ErrorKind, register_codes
from modelarts_operator.cloud.modelarts.transport import PAGE, Transport
from modelarts_operator.cloud.resources import Algorithm, AlgorithmSpec
from modelarts_operator.cloud.retry import NO_RETRY

CODES = {
    "ModelArts.2755": ErrorKind.NOT_FOUND,  # algorithm not found (HTTP 400)
    "ModelArts.2821": ErrorKind.CONFLICT,  # duplicate algorithm name
}
register_codes(CODES)


class AlgorithmsApi:
    def __init__(self, transport: Transport):
        self._t = transport

    def create(self, spec: AlgorithmSpec) -> Algorithm:
        """One create, never retried: use `ensure`, which finds a create whose answer was lost."""
        from huaweicloudsdkmodelarts.v1 import CreateAlgorithmRequest

        return Algorithm.from_api(self._t.invoke(
            "create_algorithm", lambda c: c.create_algorithm(CreateAlgorithmRequest(body=spec.body())), NO_RETRY))

    def get(self, algorithm_id: str) -> Algorithm:
        from huaweicloudsdkmodelarts.v1 import ShowAlgorithmByUuidRequest

        return Algorithm.from_api(self._t.invoke("show_algorithm_by_uuid", lambda c: c.show_algorithm_by_uuid(
            ShowAlgorithmByUuidRequest(algorithm_id=algorithm_id))))

    def find(self, name: str) -> Algorithm | None:
        from huaweicloudsdkmodelarts.v1 import ListAlgorithmsRequest

        return self._t.find_by_name(name, Algorithm.from_api, lambda offset: self._t.invoke(
            "list_algorithms", lambda c: c.list_algorithms(
                ListAlgorithmsRequest(offset=offset, limit=PAGE, searches=f"name:{name}"))))

    def update(self, algorithm_id: str, spec: AlgorithmSpec) -> Algorithm:
        """ChangeAlgorithm (PUT): the same algorithm with a new job_config, e.g. its code in another folder."""
        from huaweicloudsdkmodelarts.v1 import ChangeAlgorithmRequest

        self._t.invoke("change_algorithm", lambda c: c.change_algorithm(
            ChangeAlgorithmRequest(algorithm_id=algorithm_id, body=spec.body())))
        return self.get(algorithm_id)

    def ensure(self, spec: AlgorithmSpec, before_create: Callable[[], None] | None = None) -> tuple[Algorithm, bool]:
        return self._t.ensure("algorithm", spec.name, self.find, lambda: self.create(spec), before_create)

    def delete(self, algorithm_id: str) -> bool:
        from huaweicloudsdkmodelarts.v1 import DeleteAlgorithmRequest

        return self._t.gone_ok(lambda: self._t.invoke("delete_algorithm", lambda c: c.delete_algorithm(
            DeleteAlgorithmRequest(algorithm_id=algorithm_id))))

    def count(self) -> int:
        """How many algorithms the project holds."""
        from huaweicloudsdkmodelarts.v1 import ListAlgorithmsRequest

        return self._t.invoke("list_algorithms", lambda c: c.list_algorithms(ListAlgorithmsRequest(limit=1))).get(
            "total") or 0
