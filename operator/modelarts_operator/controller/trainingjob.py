"""TrainingJob: one run of an algorithm into the next output version folder, watched until it ends."""

from __future__ import annotations

import datetime
import json
import re

from modelarts_operator.api.kinds import ALGORITHM, MNIST_DATASET
from modelarts_operator.api.v1alpha1 import TrainingJobSpec
from modelarts_operator.cloud import CloudError, ObsUrl
from modelarts_operator.cloud.errors import none_if_gone
from modelarts_operator.cloud.resources import TrainingJob
from modelarts_operator.cloud.resources import TrainingJobSpec as CloudJobSpec
from modelarts_operator.controller import status as st
from modelarts_operator.controller.context import Context, Outcome, Resource, WaitingForDependency

VERSION_IN_PATH = re.compile(r"/(V\d{4})/?$")


def _ready_dependency(res: Resource, ctx: Context, kind, name: str) -> dict:
    obj = ctx.kube.get(kind, res.namespace, name)
    if obj is None:
        raise WaitingForDependency(f"{kind.kind} {name} not found")
    if not st.is_ready(obj.get("status")):
        reason = st.ready_reason(obj.get("status")) or "no status yet"
        raise WaitingForDependency(f"{kind.kind} {name} is not Ready ({reason})")
    return obj


def _inputs(res: Resource, ctx: Context) -> dict[str, str]:
    inputs = {}
    for item in res.spec.inputs:
        if item.dataset_ref:
            dataset = _ready_dependency(res, ctx, MNIST_DATASET, item.dataset_ref.name)
            inputs[item.name] = ObsUrl.parse(dataset["status"]["obsUrl"]).api_path
        else:
            inputs[item.name] = ObsUrl.parse(item.obs_path).api_path
    return inputs


def _existing_versions(res: Resource, ctx: Context) -> list[str]:
    output = ObsUrl.parse(res.spec.output.obs_path)
    cloud = ctx.cloud(res)
    if not cloud.obs.bucket_exists(output.bucket):
        return []
    return sorted({o.key[len(output.key):].split("/", 1)[0] for o in cloud.obs.list(output)})


def _create(res: Resource, ctx: Context, outcome: Outcome) -> TrainingJob:
    spec: TrainingJobSpec = res.spec
    cloud = ctx.cloud(res)
    algorithm = _ready_dependency(res, ctx, ALGORITHM, spec.algorithm_ref.name)
    inputs = _inputs(res, ctx)
    existing = cloud.modelarts.find_training_job(res.cloud_name)  # created before a crash: adopt it
    if existing is None:
        output = ObsUrl.parse(spec.output.obs_path)
        cloud.obs.ensure_bucket(output.bucket)
        version = st.next_version(_existing_versions(res, ctx))
        job, created = cloud.modelarts.ensure_training_job(CloudJobSpec(
            name=res.cloud_name, algorithm_id=algorithm["status"]["algorithmId"], inputs=inputs,
            outputs={spec.output.name: output.join(version).folder().api_path}, parameters=spec.hyperparameters,
            flavor_id=spec.resources.flavor, node_count=spec.resources.node_count,
            description=f"{res.ref} (managed by modelarts-operator)",
        ))
        if created:
            ctx.crashpoint("trainingjob")
    else:
        job, created = existing, False
    output_path = job.outputs.get(spec.output.name, "")
    match = VERSION_IN_PATH.search(output_path)
    ctx.record(res, jobId=job.id, cloudName=res.cloud_name, version=match.group(1) if match else None,
               outputPath=str(ObsUrl.from_api_path(output_path)) if output_path else None)
    outcome.event("Created" if created else "Adopted", f"training job {job.name} ({job.id}) writing "
                  f"{ObsUrl.from_api_path(output_path) if output_path else '(no output)'}")
    return job


def _metrics(res: Resource, ctx: Context) -> dict | None:
    try:
        config = ctx.cloud(res).obs.read(ObsUrl.parse(res.status["outputPath"]).join("model/config.json"))
        metrics = json.loads(config).get("metrics") or {}
    except (CloudError, ValueError, KeyError):
        return None
    return {k: metrics[k] for k in ("accuracy", "f1", "precision", "recall") if isinstance(metrics.get(k), int | float)}


def _started(job: TrainingJob) -> str | None:
    if not job.start_time_ms:
        return None
    when = datetime.datetime.fromtimestamp(job.start_time_ms / 1000, datetime.timezone.utc).replace(microsecond=0)
    return when.isoformat().replace("+00:00", "Z")


def reconcile(res: Resource, ctx: Context) -> Outcome:
    spec: TrainingJobSpec = res.spec
    cloud = ctx.cloud(res)
    outcome = Outcome()
    job_id = res.status.get("jobId")
    if job_id is None:
        job = _create(res, ctx, outcome)
    else:
        job = none_if_gone(lambda: cloud.modelarts.get_training_job(job_id))
        if job is None:
            # Re-running training would cost money and give another model: report, do not recreate.
            outcome.event("CloudResourceMissing", f"training job {job_id} was deleted outside the operator",
                          warning=True)
            outcome.conditions = [st.not_ready("CloudResourceMissing", f"training job {job_id} no longer exists in "
                                               "ModelArts; delete this TrainingJob and create a new one"), st.synced()]
            return outcome

    previous_phase = res.status.get("phase")
    duration = job.duration_ms // 1000
    fields = {"jobId": job.id, "cloudName": job.name, "phase": job.phase, "secondaryPhase": job.secondary_phase,
              "durationSeconds": duration, "startTime": _started(job)}
    limit = st.parse_duration(spec.max_runtime)
    if not job.finished and duration > limit and not res.status.get("stopReason"):
        cloud.modelarts.stop_training_job(job.id)
        fields["stopReason"] = "MaxRuntimeExceeded"
        outcome.event("MaxRuntimeExceeded", f"stopped after {duration}s (maxRuntime {spec.max_runtime})", warning=True)
    if job.phase in ("Running", "Completed", "Failed", "Abnormal", "Terminated"):
        fields["logTail"] = st.log_tail(cloud.modelarts.training_job_log(job.id))
    if job.phase == "Completed" and not res.status.get("metrics"):
        fields["metrics"] = _metrics(res, ctx)
    if job.phase != previous_phase:
        warning = job.phase in ("Failed", "Abnormal", "Terminated")
        outcome.event(job.phase or "Creating", f"training job {job.phase}"
                      + (f": {job.failure_message}" if warning else ""), warning=warning)
    condition = st.training_job_ready(job.phase, job.secondary_phase, job.failure_message)
    if (fields.get("stopReason") or res.status.get("stopReason")) and job.phase in ("Terminating", "Terminated"):
        condition = st.not_ready("MaxRuntimeExceeded", f"stopped: ran longer than maxRuntime {spec.max_runtime}")
    fields["message"] = condition.message
    outcome.status = fields
    outcome.conditions = [condition, st.synced()]
    outcome.changing = not job.finished
    return outcome


def finalize(res: Resource, ctx: Context) -> str | None:
    """Stop a running job and wait for it to end, delete it, then delete its output version folder.
    Returns None while waiting (the finalizer stays), a summary when done."""
    cloud = ctx.cloud(res)
    job_id = res.cloud_id("jobId", cloud.modelarts.find_training_job)
    if job_id is not None:
        job = none_if_gone(lambda: cloud.modelarts.get_training_job(job_id))
        if job is not None and not job.finished:
            if job.phase != "Terminating":
                cloud.modelarts.stop_training_job(job_id)
            return None
        if job is not None:
            cloud.modelarts.delete_training_job(job_id)
            return None  # wait until it is really gone
    removed = 0
    if res.status.get("outputPath"):
        removed = cloud.obs.delete_prefix(ObsUrl.parse(res.status["outputPath"]))
    return f"deleted training job {job_id or '(none)'} and {removed} output objects"
