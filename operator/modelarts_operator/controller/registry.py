"""Every kind's controller, in dependency order: the Kopf wiring, the runner, the demo and the guard
tests iterate this one tuple (docs/architecture.md says how to add a kind)."""

from __future__ import annotations

from modelarts_operator.controller.algorithm import AlgorithmController
from modelarts_operator.controller.base import KindController
from modelarts_operator.controller.dataset import DatasetController
from modelarts_operator.controller.service import ServiceController
from modelarts_operator.controller.trainingjob import TrainingJobController

CONTROLLERS: tuple[KindController, ...] = (DatasetController(), AlgorithmController(), TrainingJobController(),
                                           ServiceController())
BY_KIND = {controller.kind.kind: controller for controller in CONTROLLERS}
