"""ModelArtsService: import the trained model, deploy it as a real-time service, keep it as specified.

A new source (another TrainingJob) rolls over: import the new model, point the service at it, and
delete the old model once the service runs the new one.
"""

from __future__ import annotations

import hashlib

from modelarts_operator.api.kinds import TRAINING_JOB
from modelarts_operator.api.v1alpha1 import ModelArtsServiceSpec
from modelarts_operator.cloud import ObsUrl
from modelarts_operator.cloud.errors import none_if_gone
from modelarts_operator.cloud.resources import Model, ModelSpec, Service, ServiceSpec
from modelarts_operator.controller import status as st
from modelarts_operator.controller.context import (
    Context,
    Outcome,
    Resource,
    ResourceProblem,
    WaitingForDependency,
)


def _source(res: Resource, ctx: Context) -> tuple[str, str | None]:
    """The OBS folder to import from (its model/ holds the package), and the training job id if any."""
    spec: ModelArtsServiceSpec = res.spec
    if spec.model_path:
        return spec.model_path, None
    job = ctx.kube.get(TRAINING_JOB, res.namespace, spec.training_job_ref.name)
    if job is None:
        raise WaitingForDependency(f"TrainingJob {spec.training_job_ref.name} not found")
    status = job.get("status") or {}
    if not st.is_ready(status):
        if st.ready_reason(status) in st.TERMINAL_REASONS:
            raise ResourceProblem("DependencyFailed", f"TrainingJob {spec.training_job_ref.name} will not complete "
                                  f"({st.ready_reason(status)}): point trainingJobRef at another one")
        raise WaitingForDependency(f"TrainingJob {spec.training_job_ref.name} is not Completed "
                                   f"({status.get('phase') or 'no status yet'})")
    return status["outputPath"], status.get("jobId")


def model_name(res: Resource, source: str) -> str:
    """One model per (service, source): deterministic, so a lost import answer is found, not repeated."""
    return f"{res.cloud_name[:55]}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def _model(res: Resource, ctx: Context, source: str, job_id: str | None, outcome: Outcome) -> Model:
    cloud = ctx.cloud(res)
    model_id = res.status.get("modelId") if res.status.get("modelSource") == source else None
    if model_id:
        model = none_if_gone(lambda: cloud.modelarts.get_model(model_id))
        if model is not None:
            return model
        outcome.event("CloudResourceMissing", f"model {model_id} was deleted outside the operator; importing "
                      "it again", warning=True)
    model, created = cloud.modelarts.ensure_model(ModelSpec(
        name=model_name(res, source), source_location=ObsUrl.parse(source).api_path, source_job_id=job_id,
        description=f"{res.ref} (managed by modelarts-operator)"))
    if created:
        ctx.crashpoint("model")
    replaced = res.status.get("modelId") if res.status.get("modelId") not in (None, model.id) else None
    fields = {"modelId": model.id, "modelSource": source, "modelStatus": model.model_status}
    if replaced:
        fields["previousModelId"] = replaced
    ctx.record(res, **fields)
    outcome.event("ModelImport", f"importing model {model.model_name} ({model.id}) from {source}")
    return model


def _service(res: Resource, ctx: Context, model: Model, outcome: Outcome) -> Service:
    spec: ModelArtsServiceSpec = res.spec
    cloud = ctx.cloud(res)
    if res.status.get("serviceId"):
        service = none_if_gone(lambda: cloud.modelarts.get_service(res.status["serviceId"]))
        if service is not None:
            return service
        outcome.event("CloudResourceMissing", f"service {res.status['serviceId']} was deleted outside the "
                      "operator; deploying it again", warning=True)
    service, created = cloud.modelarts.ensure_service(desired(res, model.id))
    if created:
        ctx.crashpoint("service")
    ctx.record(res, serviceId=service.id, cloudName=res.cloud_name)
    outcome.event("Deploying" if created else "Adopted", f"service {service.service_name} ({service.id}) with "
                  f"{spec.instance_count} x {spec.flavor}")
    return service


def desired(res: Resource, model_id: str) -> ServiceSpec:
    spec: ModelArtsServiceSpec = res.spec
    return ServiceSpec(name=res.cloud_name, model_id=model_id, specification=spec.flavor,
                       instance_count=spec.instance_count, description=f"{res.ref} (managed by modelarts-operator)")


def _schedule_key(schedule: list[dict] | None) -> list[tuple]:
    return sorted((s.get("type"), s.get("time_unit"), int(s.get("duration") or 0)) for s in schedule or [])


def drift(service: Service, want: ServiceSpec, schedule: list[dict]) -> list[str]:
    """What differs between the running service and the spec (pure: unit-tested)."""
    changes = []
    current = service.config[0] if service.config else None
    if current is None or current.model_id != want.model_id:
        changes.append("model")
    elif current.instance_count != want.instance_count:
        changes.append("instanceCount")
    if _schedule_key(service.schedule) != _schedule_key(schedule):
        changes.append("autoStop")
    return changes


def reconcile(res: Resource, ctx: Context) -> Outcome:
    spec: ModelArtsServiceSpec = res.spec
    cloud = ctx.cloud(res)
    outcome = Outcome(changing=True)
    source, job_id = _source(res, ctx)
    model = _model(res, ctx, source, job_id, outcome)
    fields = {"modelId": model.id, "modelStatus": model.model_status, "modelSource": source}
    model_condition = st.model_ready(model.model_status, model.failed_msg)
    if model.model_status != "published":
        outcome.status = dict(fields, message=model_condition.message)
        outcome.conditions = [model_condition, st.synced()]
        outcome.changing = model_condition.reason == "Importing"
        return outcome

    service = _service(res, ctx, model, outcome)
    want, schedule = desired(res, model.id), st.auto_stop_schedule(spec.auto_stop_after)
    changes = drift(service, want, schedule)
    if changes and service.status not in ("deploying", "deleting"):
        if "model" in changes or "instanceCount" in changes:
            cloud.modelarts.update_service(service.id, config=want.config())
        if "autoStop" in changes:
            cloud.modelarts.update_service(service.id, schedule=schedule)
        outcome.event("Updating", f"service {service.id}: {', '.join(changes)} changed")
        service = cloud.modelarts.get_service(service.id)

    previous = res.status.get("previousModelId")
    if previous and service.status == "running" and not drift(service, want, schedule):
        cloud.modelarts.delete_model(previous)
        fields["previousModelId"] = None
        outcome.event("ModelReplaced", f"service runs model {model.id}; deleted the previous model {previous}")

    condition = st.service_ready(service.status, service.progress, service.error_msg)
    fields.update(serviceId=service.id, phase=service.status, endpoint=service.access_address or None,
                  instanceCount=service.config[0].instance_count if service.config else None,
                  message=condition.message)
    if service.status != res.status.get("phase"):
        outcome.event(service.status.capitalize() or "Deploying", condition.message,
                      warning=condition.reason in st.TERMINAL_REASONS)
    outcome.status = fields
    outcome.conditions = [condition, st.synced()]
    outcome.changing = condition.reason in ("Deploying", "Concerning") or bool(changes) or bool(previous)
    return outcome


def finalize(res: Resource, ctx: Context) -> str | None:
    """Delete the service, wait for it to be gone, then delete its models. None while waiting."""
    cloud = ctx.cloud(res)
    service_id = res.cloud_id("serviceId", cloud.modelarts.find_service)
    if service_id is not None:
        service = none_if_gone(lambda: cloud.modelarts.get_service(service_id))
        if service is not None:
            if service.status != "deleting":
                cloud.modelarts.delete_service(service_id)
            return None
    models = [m for m in (res.status.get("modelId"), res.status.get("previousModelId")) if m]
    for model_id in models:
        cloud.modelarts.delete_model(model_id)
    return f"deleted service {service_id or '(none)'} and {len(models)} model(s)"
