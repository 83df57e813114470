"""Typed views of ModelArts resources: the specs we send and the parts of the answers we use.

Answers are parsed leniently (unknown fields ignored, missing ones defaulted): the service adds
fields over time, and the operator must not break on that.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- algorithms ------------------------------------------------------------------------------


class AlgorithmParameter(BaseModel):
    name: str
    value: str
    description: str = ""


class AlgorithmSpec(BaseModel):
    name: str
    code_dir: str  # OBS API path, /bucket/dir/
    boot_file: str  # OBS API path, /bucket/dir/train.py
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
                "code_dir": self.code_dir,
                "boot_file": self.boot_file,
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
    create_time: int = 0

    @classmethod
    def from_api(cls, data: dict) -> Algorithm:
        metadata, job_config = data.get("metadata") or {}, data.get("job_config") or {}
        return cls(id=metadata.get("id", ""), name=metadata.get("name", ""), code_dir=job_config.get("code_dir") or "",
                   boot_file=job_config.get("boot_file") or "", create_time=metadata.get("create_time") or 0)


# --- training jobs ---------------------------------------------------------------------------


class TrainingJobSpec(BaseModel):
    name: str
    algorithm_id: str
    inputs: dict[str, str]  # input name -> OBS API path
    outputs: dict[str, str]  # output name -> OBS API path
    parameters: dict[str, str] = {}
    flavor_id: str = "modelarts.vm.cpu.8u"
    node_count: int = 1
    log_export_path: str | None = None
    description: str = ""

    def body(self) -> dict:
        spec: dict = {"resource": {"flavor_id": self.flavor_id, "node_count": self.node_count}}
        if self.log_export_path:
            spec["log_export_path"] = {"obs_url": self.log_export_path}
        return {
            "kind": "job",
            "metadata": {"name": self.name, "description": self.description},
            "algorithm": {
                "id": self.algorithm_id,
                "parameters": [{"name": k, "value": v} for k, v in self.parameters.items()],
                "inputs": [{"name": k, "remote": {"obs": {"obs_url": v}}} for k, v in self.inputs.items()],
                "outputs": [{"name": k, "remote": {"obs": {"obs_url": v}}} for k, v in self.outputs.items()],
            },
            "spec": spec,
        }


TERMINAL_JOB_PHASES = frozenset({"Completed", "Failed", "Terminated", "Abnormal"})


class TaskStatus(_Answer):
    task: str = ""
    exit_code: int | None = None
    message: str = ""


class TrainingJob(_Answer):
    id: str
    name: str
    phase: str = ""
    secondary_phase: str = ""
    duration_ms: int = 0
    start_time_ms: int = 0
    create_time_ms: int = 0
    tasks: list[str] = []
    task_statuses: list[TaskStatus] = []
    outputs: dict[str, str] = {}

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
            create_time_ms=metadata.get("create_time") or 0, tasks=status.get("tasks") or [],
            task_statuses=[TaskStatus.model_validate(t) for t in status.get("task_statuses") or []],
            outputs=outputs,
        )

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_JOB_PHASES

    @property
    def failure_message(self) -> str:
        """What went wrong, from the task statuses (exit code and message), for a failed job."""
        parts = [
            f"{t.task or 'task'} exited with {t.exit_code}" + (f": {t.message}" if t.message else "")
            for t in self.task_statuses if t.exit_code not in (None, 0) or t.message
        ]
        return "; ".join(parts) or f"{self.phase}/{self.secondary_phase}"


# --- models (v1) -----------------------------------------------------------------------------


class ModelSpec(BaseModel):
    name: str
    version: str = Field("0.0.1", pattern=r"^[1-9]?\d\.[1-9]?\d\.[1-9]?\d$")
    source_location: str  # OBS API path of the folder whose model/ holds the package
    model_type: str = "TensorFlow"
    runtime: str | None = None
    source_job_id: str | None = None
    description: str = ""

    def body(self) -> dict:
        body = {
            "model_name": self.name, "model_version": self.version, "source_location": self.source_location,
            "model_type": self.model_type, "install_type": ["real-time"], "description": self.description,
        }
        if self.runtime:
            body["runtime"] = self.runtime
        if self.source_job_id:
            body["source_job_id"] = self.source_job_id
        return body


class Model(_Answer):
    model_id: str
    model_name: str = ""
    model_version: str = ""
    model_status: str = ""
    source_location: str = ""
    failed_msg: str = ""  # why an import failed
    model_metrics: str | dict | None = None

    @property
    def id(self) -> str:
        return self.model_id


# --- services (v1) ---------------------------------------------------------------------------


class ServiceSpec(BaseModel):
    name: str
    model_id: str
    specification: str = "modelarts.vm.cpu.2u"
    instance_count: int = Field(1, ge=1, le=128)
    envs: dict[str, str] = {}
    auto_stop_hours: int | None = None  # None: runs until stopped
    description: str = ""

    def config(self) -> list[dict]:
        return [{"model_id": self.model_id, "specification": self.specification, "instance_count": self.instance_count,
                 "weight": 100, "envs": self.envs}]

    def schedule(self) -> list[dict]:
        if not self.auto_stop_hours:
            return []
        return [{"type": "stop", "time_unit": "HOURS", "duration": self.auto_stop_hours}]

    def body(self) -> dict:
        body = {"service_name": self.name, "infer_type": "real-time", "description": self.description,
                "config": self.config()}
        if self.schedule():
            body["schedule"] = self.schedule()
        return body


class ServiceModelConfig(_Answer):
    model_id: str = ""
    instance_count: int = 0
    specification: str = ""


class Service(_Answer):
    service_id: str
    service_name: str = ""
    status: str = ""
    progress: int | None = None
    access_address: str = ""
    error_msg: str = ""
    config: list[ServiceModelConfig] = []
    schedule: list[dict] | None = None

    @property
    def id(self) -> str:
        return self.service_id
