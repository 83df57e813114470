"""The four kinds: names, printer columns, and the models behind their spec and status."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from modelarts_operator.api import v1alpha1 as v1
from modelarts_operator.api.common import GROUP

READY = '.status.conditions[?(@.type=="Ready")].status'
REASON = '.status.conditions[?(@.type=="Ready")].reason'


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[tuple[str, str, str], ...] = field(default=())  # (name, type, jsonPath), before Ready/Reason/Age
    priority_columns: tuple[tuple[str, str, str], ...] = field(default=())  # shown with -o wide

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


MNIST_DATASET = Kind(
    "MnistDataset", "mnistdatasets", ("mnist",), v1.MnistDatasetSpec, v1.MnistDatasetStatus,
    columns=(("Target", "string", ".spec.target"), ("Files", "integer", ".status.fileCount")),
    priority_columns=(("Source", "string", ".spec.source.type"),),
)
ALGORITHM = Kind(
    "ModelArtsAlgorithm", "modelartsalgorithms", ("maalgo", "algo"), v1.ModelArtsAlgorithmSpec,
    v1.ModelArtsAlgorithmStatus,
    columns=(("Engine", "string", ".spec.engine.version"), ("Algorithm-ID", "string", ".status.algorithmId")),
    priority_columns=(("Code", "string", ".status.codeLocation"),),
)
TRAINING_JOB = Kind(
    "TrainingJob", "trainingjobs", ("matj", "tj"), v1.TrainingJobSpec, v1.TrainingJobStatus,
    columns=(("Phase", "string", ".status.phase"), ("Nodes", "integer", ".spec.resources.nodeCount"),
             ("Progress", "string", ".status.progress"),
             ("Version", "string", ".status.version"),
             ("Accuracy", "number", ".status.metrics.accuracy"), ("Duration", "integer", ".status.durationSeconds")),
    priority_columns=(("Job-ID", "string", ".status.jobId"), ("Output", "string", ".status.outputPath")),
)
SERVICE = Kind(
    "ModelArtsService", "modelartsservices", ("masvc",), v1.ModelArtsServiceSpec, v1.ModelArtsServiceStatus,
    columns=(("Phase", "string", ".status.phase"), ("Endpoint", "string", ".status.endpoint")),
    priority_columns=(("Model", "string", ".status.modelId"), ("Instances", "integer", ".status.instanceCount")),
)

KINDS = (MNIST_DATASET, ALGORITHM, TRAINING_JOB, SERVICE)
