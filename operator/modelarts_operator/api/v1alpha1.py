"""The four custom resources of modelarts.mlops.dev/v1alpha1.

Each spec model carries its CEL rules (`x-kubernetes-validations`) so that the CRD generated from it
rejects what the operator would refuse anyway; the operator validates with the same models: patterns
and bounds are shared, and each rule across fields (SpecRule) is written once in CEL and once in Python,
side by side. Only the transition rules (immutable fields) are the API server's alone.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StrictFloat

from modelarts_operator.api.common import (
    CREDENTIALS_FIELD,
    DELETION_POLICY_FIELD,
    CommonStatus,
    DeletionPolicy,
    ObjectReference,
    RuledSchema,
    Schema,
    SpecRule,
)
from modelarts_operator.api.strings import (
    IDENTIFIER,
    IDENTIFIER_MAX,
    AutoStop,
    BootFile,
    Identifier,
    MaxRuntime,
    ObjectName,
    ObsFolder,
    Text,
)

# The tutorial's own archive of the MNIST files: MnistSource.url's default (modelarts_operator.mnist
# fetches it, then the standard mirrors).
TUTORIAL_ZIP_URL = (
    "https://modelarts-cnnorth1-market-dataset.obs.cn-north-1.myhuaweicloud.com"
    "/dataset-market/Mnist-Data-Set/archiver/Mnist-Data-Set.zip"
)


def rules(*pairs: tuple[str, str]) -> dict:
    return {"x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in pairs]}


def distinct(values: list) -> bool:
    return len(values) == len(set(values))


def shadows(name: str, options: list[str]) -> bool:
    """A --name=value argument argparse could take for one of `options` (or for --help): the same name,
    or a prefix of one (argparse accepts abbreviations unless a boot file turns them off)."""
    return any(option.startswith(name) for option in [*options, "help"])


def shadows_cel(name: str, options: str) -> str:
    """`shadows` in CEL: `options` is a CEL list of strings."""
    return f"({options}).exists(o, o.startsWith({name})) || 'help'.startsWith({name})"


def full_default(model: type[Schema]) -> dict:
    """The schema default of an object field: every nested default spelled out. The API server
    checks a default against the CEL rules as written, before nested defaults apply, so `{}` fails
    a rule such as has(self.type)."""
    return {"default": model().model_dump(by_alias=True, exclude_none=True, mode="json")}


def immutable(field: str) -> tuple[str, str]:
    return (f"self.{field} == oldSelf.{field}", f"{field} is immutable: create a new resource instead")


# --- MnistDataset -----------------------------------------------------------------------------


class MnistSource(RuledSchema):
    """Where the four MNIST files come from."""

    spec_rules = (
        SpecRule("self.type != 'Obs' || has(self.obsPath)", "obsPath is required when type is Obs",
                 lambda s: s.type != "Obs" or s.obs_path is not None, "obsPath"),
        SpecRule("self.type == 'Obs' || !has(self.obsPath)", "obsPath is only used when type is Obs",
                 lambda s: s.type == "Obs" or s.obs_path is None, "obsPath"),
    )

    type: Literal["Download", "Obs", "Local"] = Field(
        "Download",
        description="Download: the URL (the tutorial's Mnist-Data-Set.zip by default), then the standard mirrors. "
        "Obs: copy from obsPath (e.g. a public dataset bucket). Local: the copy bundled with the operator.",
    )
    url: str = Field(TUTORIAL_ZIP_URL, pattern=r"^https?://[^\s]+$", max_length=2048,
                     description="Zip archive tried first with Download.")
    obs_path: ObsFolder | None = Field(None, description="OBS folder holding the files, with Obs.")


class MnistDatasetSpec(Schema):
    """The MNIST data set copied into an OBS folder, as step 1 of the tutorial."""

    model_config = Schema.model_config | {"json_schema_extra": rules(immutable("target"))}

    source: MnistSource = Field(default_factory=MnistSource, description="Where the files come from.",
                                json_schema_extra=full_default(MnistSource))
    target: ObsFolder = Field(description="OBS folder to fill, e.g. obs://test-modelarts/dataset-mnist/.")
    layout: Literal["Raw", "Gz", "Both"] = Field(
        "Both", description="Which forms to upload: raw IDX files, .gz files, or both (as the tutorial's bucket).")
    credentials_secret: str | None = CREDENTIALS_FIELD
    deletion_policy: DeletionPolicy = DELETION_POLICY_FIELD


class DatasetFile(Schema):
    name: str
    size: int
    sha256: str = Field(description="SHA-256 of the uploaded object.")


class MnistDatasetStatus(CommonStatus):
    obs_url: str | None = Field(None, description="The filled OBS folder.")
    files: list[DatasetFile] = Field([], description="The uploaded objects with size and SHA-256.")
    file_count: int | None = Field(None, description="How many objects the dataset wrote.")
    train_samples: int | None = Field(None, description="Images in the training set (60000).")
    test_samples: int | None = Field(None, description="Images in the test set (10000).")
    bytes_uploaded: int | None = Field(None, description="Bytes sent by the last sync (0 when nothing changed).")


# --- ModelArtsAlgorithm -----------------------------------------------------------------------


ENGINE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"


class Engine(Schema):
    name: str = Field("TensorFlow", description="AI engine, e.g. TensorFlow, PyTorch, MindSpore.",
                      pattern=ENGINE_NAME, max_length=64)
    version: str = Field("TensorFlow-2.21-python3.11", description="Engine version as ModelArts names it.",
                         pattern=ENGINE_NAME, max_length=128)


class AlgorithmCode(RuledSchema):
    """The training code: exactly one of builtin, obsPath, configMap."""

    spec_rules = (
        SpecRule("(has(self.builtin) ? 1 : 0) + (has(self.obsPath) ? 1 : 0) + (has(self.configMap) ? 1 : 0) == 1",
                 "set exactly one of builtin, obsPath, configMap",
                 lambda s: [s.builtin, s.obs_path, s.config_map].count(None) == 2),
        SpecRule("has(self.obsPath) || has(self.uploadTo)", "uploadTo is required with builtin or configMap code",
                 lambda s: s.obs_path is not None or s.upload_to is not None, "uploadTo"),
        SpecRule("!has(self.obsPath) || !has(self.uploadTo)", "uploadTo is only used with builtin or configMap code",
                 lambda s: s.obs_path is None or s.upload_to is None, "uploadTo"),
    )

    builtin: Literal["mnist-tensorflow"] | None = Field(
        None, description="mnist-tensorflow: this project's model_code/ (TF2 MNIST trainer and inference code).")
    obs_path: ObsFolder | None = Field(None, description="An OBS folder that already holds the code.")
    config_map: ObjectName | None = Field(None, description="A ConfigMap in this namespace: each key is a file.")
    upload_to: ObsFolder | None = Field(
        None, description="OBS folder the builtin or ConfigMap code is uploaded to. Changing it uploads the code "
        "to the new folder, points the algorithm there, and deletes the files uploaded to the old one.")


class AlgorithmParameterSpec(Schema):
    name: Identifier = Field(description="Passed to the boot file as --<name>=<value>: an identifier, not a "
                             "channel's name or a prefix of one.")
    default: Text = Field("", description="Value used when a TrainingJob does not set it.")
    description: Text = Field("", description="What the parameter does (shown in ModelArts).")


class ModelArtsAlgorithmSpec(RuledSchema):
    """A ModelArts custom algorithm (step 3 of the tutorial); the code is uploaded and kept in sync."""

    model_config = Schema.model_config | {"json_schema_extra": rules(
        immutable("engine"), immutable("bootFile"), immutable("inputs"), immutable("outputs"),
        immutable("parameters"),
    )}
    spec_rules = (
        SpecRule("self.inputs.all(x, self.inputs.exists_one(y, y == x)) && "
                 "self.outputs.all(x, self.outputs.exists_one(y, y == x)) && !self.inputs.exists(x, x in self.outputs)",
                 "channel names must be distinct (a channel cannot be both an input and an output)",
                 lambda s: distinct([*s.inputs, *s.outputs]), "inputs"),
        SpecRule("self.parameters.all(p, self.parameters.exists_one(q, q.name == p.name))",
                 "parameter names must be distinct", lambda s: distinct([p.name for p in s.parameters]), "parameters"),
        SpecRule(f"self.parameters.all(p, !({shadows_cel('p.name', 'self.inputs + self.outputs')}))",
                 "a parameter may not be named like a channel, a prefix of one, or help (argparse would take it "
                 "for that option)",
                 lambda s: not any(shadows(p.name, [*s.inputs, *s.outputs]) for p in s.parameters), "parameters"),
    )

    engine: Engine = Field(default_factory=Engine, json_schema_extra=full_default(Engine),
                           description="The AI engine the training runs on.")
    code: AlgorithmCode = Field(description="Where the training code comes from.")
    boot_file: BootFile = Field("train_mnist_tf.py",
                                description="Boot file: a relative path inside the code folder (no . or .. segments).")
    inputs: list[Identifier] = Field(["data_url"], min_length=1, max_length=8, description="Input channel names.")
    outputs: list[Identifier] = Field(["train_url"], min_length=1, max_length=8, description="Output channel names.")
    parameters: list[AlgorithmParameterSpec] = Field([], max_length=64,
                                                     description="Hyperparameters with their defaults.")
    credentials_secret: str | None = CREDENTIALS_FIELD
    deletion_policy: DeletionPolicy = DELETION_POLICY_FIELD


class ModelArtsAlgorithmStatus(CommonStatus):
    algorithm_id: str | None = Field(None, description="The ModelArts algorithm id.")
    code_location: str | None = Field(None, description="OBS folder of the code the algorithm runs.")
    code_files: int | None = Field(None, description="Files in the code folder.")
    uploaded_files: list[str] = Field([], description="OBS URLs of the code files the operator uploaded, recorded "
                                      "before the upload: deleted with the resource, or once the algorithm no longer "
                                      "runs them (uploadTo moved, a file left the ConfigMap).")


# --- TrainingJob ------------------------------------------------------------------------------


class JobInput(RuledSchema):
    spec_rules = (
        SpecRule("has(self.datasetRef) != has(self.obsPath)", "set exactly one of datasetRef, obsPath",
                 lambda s: (s.dataset_ref is None) != (s.obs_path is None)),
    )

    name: Identifier = Field("data_url", description="The algorithm's input channel.")
    dataset_ref: ObjectReference | None = Field(None, description="An MnistDataset whose target is the input.")
    obs_path: ObsFolder | None = Field(None, description="An OBS folder.")


class JobOutput(Schema):
    name: Identifier = Field("train_url", description="The algorithm's output channel.")
    obs_path: ObsFolder = Field(description="OBS folder; each run reserves and writes its own version folder "
                                "V0001, V0002, ... (jobs may share an output folder).")


FLAVOR = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Fraction = Annotated[StrictFloat, Field(ge=0, le=1)]  # strict: "0.9" is refused, as the CRD's type: number does


class JobResources(Schema):
    flavor: str = Field("modelarts.vm.cpu.8u", pattern=FLAVOR, max_length=64, description="ModelArts resource flavor.")
    node_count: int = Field(1, ge=1, le=16, description="Number of nodes.")


def _channels(spec: TrainingJobSpec) -> list[str]:
    return [*(i.name for i in spec.inputs), spec.output.name]


CHANNELS_CEL = "self.inputs.map(i, i.name) + [self.output.name]"


class TrainingJobSpec(RuledSchema):
    """One run of an algorithm (step 4 of the tutorial). A run cannot be changed: create a new TrainingJob."""

    spec_rules = (
        SpecRule(f"self.hyperparameters.all(k, k.matches('{IDENTIFIER}') && k.size() <= {IDENTIFIER_MAX})",
                 f"hyperparameter names must be identifiers (letters, digits, _) of at most {IDENTIFIER_MAX} characters",
                 lambda s: all(re.fullmatch(IDENTIFIER, k) and len(k) <= IDENTIFIER_MAX for k in s.hyperparameters),
                 "hyperparameters"),
        SpecRule("self.inputs.all(i, self.inputs.exists_one(j, j.name == i.name)) && "
                 "!self.inputs.exists(i, i.name == self.output.name)",
                 "channel names must be distinct (a channel cannot be both an input and the output)",
                 lambda s: distinct(_channels(s)), "inputs"),
        SpecRule(f"self.hyperparameters.all(k, !({shadows_cel('k', CHANNELS_CEL)}))",
                 "a hyperparameter may not be named like a channel, a prefix of one, or help (argparse would take "
                 "it for that option)",
                 lambda s: not any(shadows(k, _channels(s)) for k in s.hyperparameters), "hyperparameters"),
    )

    model_config = Schema.model_config | {"json_schema_extra": rules(
        immutable("algorithmRef"), immutable("inputs"), immutable("output"), immutable("hyperparameters"),
        immutable("resources"),
    )}

    algorithm_ref: ObjectReference = Field(description="The ModelArtsAlgorithm to run (it must be Ready).")
    inputs: list[JobInput] = Field(min_length=1, max_length=8, description="Input channels and their data.")
    output: JobOutput = Field(description="Where the run writes its model package.")
    hyperparameters: dict[str, Text] = Field(
        {}, max_length=64, description="Values for the algorithm's parameters (strings), passed as separate "
        "--<name>=<value> arguments: names are identifiers, not a channel's name or a prefix of one.")
    resources: JobResources = Field(default_factory=JobResources, json_schema_extra=full_default(JobResources),
                                    description="Compute for the run.")
    max_runtime: MaxRuntime = Field("1h", description="Stop the job when it runs longer (the tutorial warns of "
                                    "charges past an hour); above zero, at most 30d.")
    credentials_secret: str | None = CREDENTIALS_FIELD
    deletion_policy: DeletionPolicy = DELETION_POLICY_FIELD


class JobMetrics(Schema):
    accuracy: float | None = None
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None


class WorkerStatus(Schema):
    name: str = Field(description="The worker (ModelArts task), e.g. worker-0; worker-0 is the chief.")
    state: str = Field(description="Pending, Running, Succeeded, Failed, Stopped (ended by the others' failure or "
                       "a terminate) or Unknown.")
    exit_code: int | None = Field(None, description="Its exit code once it ended (negative: killed by that signal).")
    message: str | None = Field(None, description="What ModelArts said of its end.")


class TrainingJobStatus(CommonStatus):
    job_id: str | None = Field(None, description="The ModelArts training job id.")
    phase: str | None = Field(None, description="ModelArts phase: Creating, Pending, Running, Completed, Failed, ...")
    secondary_phase: str | None = Field(None, description="ModelArts secondary phase, e.g. Queuing.")
    version: str | None = Field(None, description="The output version folder of this run, e.g. V0001.")
    output_path: str | None = Field(None, description="OBS folder of this run's output (its model/ is the package).")
    start_time: str | None = Field(None, description="When the job started running (RFC 3339).")
    duration_seconds: int | None = Field(None, description="Running time so far, or in all.")
    metrics: JobMetrics | None = Field(None, description="Test metrics from the model package's config.json.")
    log_tail: str | None = Field(None, description="The last lines of the training log.")
    progress: str | None = Field(None, description="Epochs done of all, e.g. 3/6 (the PROGRESS column): from the "
                                 "last complete line `epoch=3/6 name=number ...` the boot file printed; unset until "
                                 "it prints one (and for boot files that print none).")
    epoch: int | None = Field(None, ge=0, description="The epoch of that line (3 of 3/6).")
    epochs: int | None = Field(None, ge=1, description="All epochs of the run (6 of 3/6).")
    epoch_metrics: dict[str, float] | None = Field(
        None, max_length=16, description="The figures of that line by name, e.g. loss, accuracy, val_accuracy, "
        "seconds (the first 16; pairs that are no name=number are left out).")
    stop_reason: str | None = Field(None, description="Why the operator stopped the job (MaxRuntimeExceeded).")
    workers: list[WorkerStatus] = Field([], max_length=16, description="Each worker of the job (one per node of "
                                        "spec.resources.nodeCount) and its state.")
    failed_worker: str | None = Field(None, description="The worker whose failure ended the job; logTail is its log.")


# --- ModelArtsService -------------------------------------------------------------------------


class ModelArtsServiceSpec(RuledSchema):
    """A trained model imported and deployed as a real-time service (steps 5-6 of the tutorial)."""

    spec_rules = (
        SpecRule("has(self.trainingJobRef) != has(self.modelPath)", "set exactly one of trainingJobRef, modelPath",
                 lambda s: (s.training_job_ref is None) != (s.model_path is None)),
    )

    training_job_ref: ObjectReference | None = Field(
        None, description="A Completed TrainingJob whose output holds the model package. Changing it rolls the "
        "service over to the new model, then deletes the old one.")
    model_path: ObsFolder | None = Field(None, description="An OBS folder whose model/ holds a model package.")
    flavor: str = Field("modelarts.vm.cpu.2u", pattern=FLAVOR, max_length=64, description="Instance specification.")
    instance_count: int = Field(1, ge=1, le=128, description="Number of instances; changing it rescales the service.")
    auto_stop_after: AutoStop | None = Field(None, description="Stop the service after this long (e.g. 2h; above "
                                             "zero, at most 30d); unset: never.")
    min_accuracy: Fraction | None = Field(
        None, description="Quality gate, 0 to 1: a model whose test accuracy is below it is not imported. A service "
        "with nothing deployed yet stays Ready=False BelowQualityGate; a running one keeps serving its current "
        "model (Ready=True, reason BelowQualityGate). The figure is the TrainingJob's status.metrics (for "
        "modelPath: metrics of model/config.json); a model without it does not pass. Checked before a model is "
        "imported: raising it takes no running model away, lowering it lets a held-back one in; unset: no gate.")
    min_f1: Fraction | None = Field(None, description="Quality gate on the test F1 score, 0 to 1, as minAccuracy.")
    credentials_secret: str | None = CREDENTIALS_FIELD
    deletion_policy: DeletionPolicy = DELETION_POLICY_FIELD


class ModelArtsServiceStatus(CommonStatus):
    model_id: str | None = Field(None, description="The imported model's id.")
    model_status: str | None = Field(None, description="publishing, published or failed.")
    model_source: str | None = Field(None, description="OBS folder the current model was imported from.")
    model_origin: str | None = Field(None, description="Where the current model came from (TrainingJob <name>, or "
                                     "modelPath): until spec.trainingJobRef or modelPath changes, the TrainingJob "
                                     "is not read again, and its later state does not touch the running service.")
    service_id: str | None = Field(None, description="The ModelArts service id.")
    phase: str | None = Field(None, description="ModelArts service status: deploying, running, failed, stopped, ...")
    endpoint: str | None = Field(None, description="The service's access address (POST pictures here).")
    instance_count: int | None = Field(None, description="Instances the service runs now.")
    previous_model_id: str | None = Field(None, description="A replaced model, deleted once the service runs the new one.")
