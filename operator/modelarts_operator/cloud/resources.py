"""Typed views of ModelArts resources: the specs we send and the parts of the answers we use.

Answers are parsed leniently (unknown fields ignored, missing ones defaulted): the service adds
fields over time, and the operator must not break on that. States are enums whose values are the
wire strings (`job.phase == "Running"` holds); a state this code does not know yet is kept as it
came (a pseudo-member carrying the raw string) instead of failing the parse.

OBS locations: specs take an `ObsUrl`, an `obs://` URL or a ModelArts API path (`/bucket/dir/`);
`body()` writes API paths, the only form ModelArts reads.
"""

from __future__ import annotations

import datetime
import enum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

from modelarts_operator.cloud.obs import ObsUrl
from modelarts_operator.cloud.versions import VERSION_FOLDER


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _State(str, enum.Enum):
    """A cloud state: compares, hashes, formats and serialises as its wire string. An unknown value
    becomes an unnamed pseudo-member holding the raw string, so a new cloud state never fails a parse."""

    __str__ = str.__str__
    __format__ = str.__format__

    @classmethod
    def _missing_(cls, value):
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value or "UNSET"
        member._value_ = value
        return member


def _obs_url(value):
    if isinstance(value, str):
        return ObsUrl.parse(value) if value.startswith("obs://") else ObsUrl.from_api_path(value)
    return value


# An OBS location in a spec: given as ObsUrl, obs:// URL or API path; dumped as the API path.
ObsLocation = Annotated[ObsUrl, BeforeValidator(_obs_url), PlainSerializer(lambda url: url.api_path, return_type=str)]


# --- algorithms ------------------------------------------------------------------------------


class AlgorithmParameter(BaseModel):
    name: str
    value: str
    description: str = ""


class AlgorithmSpec(BaseModel):
    name: str
    code_dir: ObsLocation  # the code folder
    boot_file: ObsLocation  # the boot file in it
    engine_name: str = "TensorFlow"
    engine_version: str = "TensorFlow-2.21-python3.11"
    inputs: list[str] = ["data_url"]
    outputs: list[str] = ["train_url"]
    parameters: list[AlgorithmParameter] = []
    description: str = ""

    def body(self) -> dict:
        return {
            "metadata": {"name": self.name, "description": self.description},
            "job_config": {
                "code_dir": self.code_dir.api_path,
                "boot_file": self.boot_file.api_path,
                "parameters": [
                    {
                        "name": p.name, "value": p.value, "description": p.description,
                        "constraint": {"type": "String", "editable": True, "required": False, "sensitive": False,
                                       "valid_type": "None", "valid_range": []},
                    }
                    for p in self.parameters
                ],
                "parameters_customization": True,
                "inputs": [{"name": name} for name in self.inputs],
                "outputs": [{"name": name} for name in self.outputs],
                "engine": {"engine_name": self.engine_name, "engine_version": self.engine_version},
            },
        }


class Algorithm(_Answer):
    id: str
    name: str
    code_dir: str = ""
    boot_file: str = ""

    @classmethod
    def from_api(cls, data: dict) -> Algorithm:
        metadata, job_config = data.get("metadata") or {}, data.get("job_config") or {}
        return cls(id=metadata.get("id", ""), name=metadata.get("name", ""), code_dir=job_config.get("code_dir") or "",
                   boot_file=job_config.get("boot_file") or "")


# --- training jobs ---------------------------------------------------------------------------


class TrainingJobSpec(BaseModel):
    name: str
    algorithm_id: str
    inputs: dict[str, ObsLocation]  # input channel -> OBS folder or file
    outputs: dict[str, ObsLocation]  # output channel -> OBS folder
    parameters: dict[str, str] = {}
    flavor_id: str = "modelarts.vm.cpu.8u"
    node_count: int = 1
    description: str = ""

    def body(self) -> dict:
        return {
            "kind": "job",
            "metadata": {"name": self.name, "description": self.description},
            "algorithm": {
                "id": self.algorithm_id,
                "parameters": [{"name": k, "value": v} for k, v in self.parameters.items()],
                "inputs": [{"name": k, "remote": {"obs": {"obs_url": v.api_path}}} for k, v in self.inputs.items()],
                "outputs": [{"name": k, "remote": {"obs": {"obs_url": v.api_path}}} for k, v in self.outputs.items()],
            },
            "spec": {"resource": {"flavor_id": self.flavor_id, "node_count": self.node_count}},
        }


class JobPhase(_State):
    """`status.phase` of a v2 training job."""

    CREATING = "Creating"
    PENDING = "Pending"  # queued for resources; can last hours at peak times
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    ABNORMAL = "Abnormal"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


TERMINAL_JOB_PHASES = frozenset({JobPhase.COMPLETED, JobPhase.FAILED, JobPhase.TERMINATED, JobPhase.ABNORMAL})


class TaskStatus(_Answer):
    task: str = ""
    exit_code: int | None = None
    message: str = ""


class TrainingJob(_Answer):
    id: str
    name: str
    phase: JobPhase = JobPhase("")  # "" before the service reports one
    secondary_phase: str = ""  # a finer state (Queuing, CreateFailed, Lost, ...), shown as it comes
    duration_ms: int = 0
    start_time_ms: int = 0
    tasks: list[str] = []  # worker-0 .. worker-<node_count - 1>
    task_statuses: list[TaskStatus] = []  # one per task that has ended
    end_related_task: str = ""  # the task whose end ended the last run (status.running_records)
    outputs: dict[str, str] = {}  # output channel -> OBS API path, as the service answers

    @classmethod
    def from_api(cls, data: dict) -> TrainingJob:
        metadata, status = data.get("metadata") or {}, data.get("status") or {}
        outputs = {
            o.get("name", ""): ((o.get("remote") or {}).get("obs") or {}).get("obs_url", "")
            for o in (data.get("algorithm") or {}).get("outputs") or []
        }
        return cls(
            id=metadata.get("id", ""), name=metadata.get("name", ""),
            phase=status.get("phase") or "", secondary_phase=status.get("secondary_phase") or "",
            duration_ms=status.get("duration") or 0, start_time_ms=status.get("start_time") or 0,
            tasks=[t for t in status.get("tasks") or [] if isinstance(t, str)],
            task_statuses=[TaskStatus.model_validate(t) for t in status.get("task_statuses") or []],
            end_related_task=((status.get("running_records") or [{}])[-1] or {}).get("end_related_task") or "",
            outputs=outputs,
        )

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_JOB_PHASES

    def output(self, name: str) -> ObsUrl | None:
        """The OBS folder the output channel `name` writes; None when the job has no such output (or
        its location is not an OBS path)."""
        path = self.outputs.get(name)
        if not path:
            return None
        try:
            return ObsUrl.from_api_path(path).folder()
        except ValueError:
            return None

    def output_version(self, name: str) -> str | None:
        """The version folder (`V0001`, ...) the output channel `name` writes, when it writes one."""
        url = self.output(name)
        last = url.key.rstrip("/").rsplit("/", 1)[-1] if url else ""
        return last if VERSION_FOLDER.fullmatch(last) else None

    @property
    def failure_message(self) -> str:
        """What went wrong, from the task statuses (exit code and message), for a failed job."""
        ended = [t for t in self.task_statuses if t.exit_code not in (None, 0) or t.message]
        cause = [t for t in ended if t.task == self.end_related_task]  # with several workers: the one that failed
        parts = [
            f"{t.task or 'task'} exited with {t.exit_code}" + (f": {t.message}" if t.message else "")
            for t in cause or ended
        ]
        return "; ".join(parts) or f"{self.phase}/{self.secondary_phase}"


# --- models (v1) -----------------------------------------------------------------------------


class ModelSpec(BaseModel):
    name: str
    version: str = Field("0.0.1", pattern=r"^[1-9]?\d\.[1-9]?\d\.[1-9]?\d$")
    source_location: ObsLocation  # the folder whose model/ holds the package
    model_type: str = "TensorFlow"
    source_job_id: str | None = None
    description: str = ""

    def body(self) -> dict:
        body = {
            "model_name": self.name, "model_version": self.version, "source_location": self.source_location.api_path,
            "model_type": self.model_type, "install_type": ["real-time"], "description": self.description,
        }
        if self.source_job_id:
            body["source_job_id"] = self.source_job_id
        return body


class ModelStatus(_State):
    """`model_status` of a v1 model (an import)."""

    PUBLISHING = "publishing"
    PUBLISHED = "published"  # ready to deploy
    FAILED = "failed"
    BUILDING = "building"  # building the runtime image
    BUILDING_FAILED = "building_failed"


class Model(_Answer):
    model_id: str
    model_name: str = ""
    model_version: str = ""
    model_status: ModelStatus = ModelStatus("")
    source_location: str = ""
    failed_msg: str = ""  # why an import failed

    @property
    def id(self) -> str:
        return self.model_id


# --- services (v1) ---------------------------------------------------------------------------

# ModelArts schedules count in these units; the largest that divides the duration exactly is used.
SCHEDULE_UNITS = {"DAYS": 86400, "HOURS": 3600, "MINUTES": 60}


class ServiceSpec(BaseModel):
    name: str
    model_id: str
    specification: str = "modelarts.vm.cpu.2u"
    instance_count: int = Field(1, ge=1, le=128)
    auto_stop: datetime.timedelta | None = None  # stop the service this long after it starts; None: runs on
    description: str = ""

    @field_validator("auto_stop")
    @classmethod
    def _whole_minutes(cls, value: datetime.timedelta | None) -> datetime.timedelta | None:
        if value is not None and (value <= datetime.timedelta(0) or value % datetime.timedelta(minutes=1)):
            raise ValueError("auto_stop must be a positive whole number of minutes (ModelArts counts in "
                             "MINUTES, HOURS or DAYS)")
        return value

    def config(self) -> list[dict]:
        return [{"model_id": self.model_id, "specification": self.specification, "instance_count": self.instance_count,
                 "weight": 100}]

    def schedule(self) -> list[dict]:
        """The ModelArts schedule for `auto_stop`: `[]` (none, which also clears one on update) or one stop entry."""
        if self.auto_stop is None:
            return []
        seconds = int(self.auto_stop.total_seconds())
        unit, size = next((u, s) for u, s in SCHEDULE_UNITS.items() if seconds % s == 0)
        return [{"type": "stop", "time_unit": unit, "duration": seconds // size}]

    def body(self) -> dict:
        body = {"service_name": self.name, "infer_type": "real-time", "description": self.description,
                "config": self.config()}
        if self.auto_stop is not None:
            body["schedule"] = self.schedule()
        return body


class ServiceStatus(_State):
    """`status` of a v1 real-time service."""

    DEPLOYING = "deploying"
    RUNNING = "running"
    CONCERNING = "concerning"  # some instances are unhealthy
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"  # by its schedule or by hand
    DELETING = "deleting"
    PENDING = "pending"  # waiting to start
    WAITING = "waiting"  # queued for resources
    FINISHED = "finished"  # batch services only


class ServiceModelConfig(_Answer):
    model_id: str = ""
    instance_count: int = 0
    specification: str = ""


def _schedule_key(schedule: list[dict] | None) -> list[tuple]:
    """Schedule entries made comparable: 2 HOURS equals 120 MINUTES; an unknown unit stays as it came."""
    key = []
    for entry in schedule or []:
        unit, duration = entry.get("time_unit"), int(entry.get("duration") or 0)
        key.append((entry.get("type"), duration * SCHEDULE_UNITS[unit]) if unit in SCHEDULE_UNITS
                   else (entry.get("type"), unit, duration))
    return sorted(key, key=repr)


class Service(_Answer):
    service_id: str
    service_name: str = ""
    status: ServiceStatus = ServiceStatus("")
    progress: int | None = None
    access_address: str = ""
    error_msg: str = ""
    config: list[ServiceModelConfig] = []
    schedule: list[dict] | None = None

    @property
    def id(self) -> str:
        return self.service_id

    def matches(self, spec: ServiceSpec) -> list[str]:
        """What differs from `spec`, by the names `update_service` takes: "model", "instanceCount" (compared
        only when the model is the same), "autoStop". Empty when the service is as specified."""
        changes = []
        current = self.config[0] if self.config else None
        if current is None or current.model_id != spec.model_id:
            changes.append("model")
        elif current.instance_count != spec.instance_count:
            changes.append("instanceCount")
        if _schedule_key(self.schedule) != _schedule_key(spec.schedule()):
            changes.append("autoStop")
        return changes
