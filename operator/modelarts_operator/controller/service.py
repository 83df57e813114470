"""ModelArtsService: import the trained model, deploy it as a real-time service, keep it as specified.

A new source (another TrainingJob) rolls over: import the new model, point the service at it, and
delete the old model once the service runs the new one. A model below the quality gate (spec.minAccuracy,
minF1) is not imported: the service keeps what it serves, or waits with nothing deployed.
"""

from __future__ import annotations

import datetime
import hashlib

from pydantic import ValidationError

from modelarts_operator.api.conditions import Cond, Reason, find_condition, not_ready, ready, synced
from modelarts_operator.api.durations import parse_duration
from modelarts_operator.api.kinds import SERVICE, TRAINING_JOB
from modelarts_operator.api.v1alpha1 import JobMetrics, ModelArtsServiceSpec, ModelArtsServiceStatus
from modelarts_operator.cloud import ObsUrl
from modelarts_operator.cloud.errors import MODELARTS_CODES, none_if_gone
from modelarts_operator.cloud.resources import Model, ModelSpec, Service, ServiceSpec, ServiceStatus
from modelarts_operator.controller import adoption
from modelarts_operator.controller.base import KindController
from modelarts_operator.controller.context import Context, Outcome, Requeue, Resource
from modelarts_operator.controller.errors import DependencyFailed, WaitingForDependency
from modelarts_operator.controller.packages import package_metrics
from modelarts_operator.controller.references import require_ready

Svc = Resource[ModelArtsServiceSpec, ModelArtsServiceStatus]


def model_condition(model_status: str, failure: str) -> Cond | None:
    """None once the model is published; else why the service waits or failed."""
    if model_status == "published":
        return None
    if model_status in ("failed", "building_failed"):
        return not_ready(Reason.FAILED, f"model import failed: {failure or model_status}")
    return not_ready(Reason.IMPORTING, f"model {model_status or 'publishing'}")


def service_condition(status: str, progress: int | None, error: str) -> Cond:
    if status == "running":
        return ready(Reason.RUNNING, "service running")
    if status == "failed":
        return not_ready(Reason.FAILED, f"service failed: {error or 'no message'}")
    if status == "stopped":
        return not_ready(Reason.STOPPED, "service stopped (auto-stop or manual); start it in ModelArts or recreate")
    if status == "concerning":
        return not_ready(Reason.CONCERNING, f"some instances are unhealthy: {error or 'no message'}")
    return not_ready(Reason.DEPLOYING, f"service {status or 'deploying'} ({progress or 0}%)")


def below_gate(spec: ModelArtsServiceSpec, figures: JobMetrics | None) -> list[str]:
    """Each way the model's figures miss spec.minAccuracy and minF1 (empty: it passes)."""
    missed = []
    for name, gate, bound in (("accuracy", "minAccuracy", spec.min_accuracy), ("f1", "minF1", spec.min_f1)):
        value = getattr(figures, name, None)
        if bound is None or (value is not None and value >= bound):
            continue
        missed.append(f"no {name} figure in its metrics (model/config.json) for {gate} {bound}" if value is None
                      else f"{name} {value} below {gate} {bound}")
    return missed


def gate_condition(spec: ModelArtsServiceSpec, figures: JobMetrics | None, model: str,
                   serving: str | None) -> Cond | None:
    """None when the model from `model` passes the gate. Else BelowQualityGate: Ready=False with nothing
    deployed; Ready=True while the service keeps serving the model from `serving`."""
    missed = below_gate(spec, figures)
    if not missed:
        return None
    message = f"model from {model}: {', '.join(missed)}"
    if serving is None:
        return not_ready(Reason.BELOW_QUALITY_GATE, f"{message}; nothing deployed")
    return ready(Reason.BELOW_QUALITY_GATE, f"{message}; keeps serving the model from {serving}")


def job_metrics(job: dict) -> JobMetrics | None:
    try:
        return JobMetrics.model_validate((job.get("status") or {}).get("metrics") or {})
    except ValidationError:  # a status edited by hand: no figures
        return None


def model_name(res: Svc, source: str) -> str:
    """One model per (service, source): deterministic, so a lost import answer is found, not repeated."""
    return f"{res.cloud_name[:55]}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def origin(res: Svc) -> str:
    """The spec's model source, recorded with the model imported from it."""
    spec = res.spec
    return f"TrainingJob {spec.training_job_ref.name}" if spec.training_job_ref else f"modelPath {spec.model_path}"


def desired(res: Svc, model_id: str) -> ServiceSpec:
    spec = res.spec
    auto_stop = datetime.timedelta(seconds=parse_duration(spec.auto_stop_after)) if spec.auto_stop_after else None
    return ServiceSpec(name=res.cloud_name, model_id=model_id, specification=spec.flavor,
                       instance_count=spec.instance_count, auto_stop=auto_stop,
                       description=f"{res.ref} (managed by modelarts-operator)")


class ServiceController(KindController):
    kind = SERVICE
    reasons = frozenset({Reason.RUNNING, Reason.IMPORTING, Reason.DEPLOYING, Reason.FAILED, Reason.STOPPED,
                         Reason.CONCERNING, Reason.BELOW_QUALITY_GATE, Reason.ADOPTION_FAILED,
                         Reason.CLOUD_RESOURCE_MISSING})
    cloud_codes = MODELARTS_CODES

    def _source(self, res: Svc, ctx: Context) -> tuple[str, dict | None]:
        """The OBS folder to import from (its model/ holds the package), and the TrainingJob if any."""
        if res.spec.model_path:
            return res.spec.model_path, None
        job = require_ready(res, ctx, TRAINING_JOB, res.spec.training_job_ref.name)
        return job["status"]["outputPath"], job

    def _gate(self, res: Svc, ctx: Context, source: str, job: dict | None, outcome: Outcome) -> Cond | None:
        """The quality gate before a model is imported (None: import it). A model imported already is past it:
        a raised gate takes no running model away."""
        spec, status = res.spec, res.status
        if (spec.min_accuracy is None and spec.min_f1 is None) or status.model_source == source:
            return None
        figures = job_metrics(job) if job is not None else package_metrics(ctx.cloud(res).obs, source)
        serving = (status.model_origin or status.model_source) if self._serving(res) else None
        gate = gate_condition(spec, figures, origin(res), serving)
        if gate is not None and find_condition(res.stored).get("message") != gate.message:
            outcome.event(Reason.BELOW_QUALITY_GATE.value, gate.message, warning=True)  # once, not every look
        return gate

    def _model(self, res: Svc, ctx: Context, source: str, job_id: str | None, outcome: Outcome) -> Model:
        cloud, status = ctx.cloud(res), res.status
        model_id = status.model_id if status.model_source == source else None
        if model_id:
            model = none_if_gone(lambda: cloud.modelarts.get_model(model_id))
            if model is not None:
                status.model_origin = origin(res)
                return model
            if adoption.adopted(res, "model", model_id):
                raise adoption.missing(res, "model", model_id)
            outcome.event("CloudResourceMissing", f"model {model_id} was deleted outside the operator; importing "
                          "it again", warning=True)
        external = adoption.wanted(res, adoption.EXTERNAL_MODEL) if status.model_id is None else None
        if external:  # the first model is one imported by hand: deploy it instead of importing one
            model = adoption.adopt("model", external, adoption.EXTERNAL_MODEL, cloud.modelarts.get_model,
                                   cloud.modelarts.find_model)
            status.model_id, status.model_source, status.model_status = model.id, source, model.model_status
            status.model_origin = origin(res)
            adoption.took_over(res, ctx, outcome, "model", model.id, model.model_name,
                               f", as the model of {status.model_origin}")
            return model
        name = model_name(res, source)
        model, created = cloud.modelarts.ensure_model(ModelSpec(
            name=name, source_location=ObsUrl.parse(source).api_path, source_job_id=job_id,
            description=f"{res.ref} (managed by modelarts-operator)"),
            before_create=lambda: ctx.begin_create(res, "model", name))
        if created:
            ctx.crashpoint("model")
        if status.model_id not in (None, model.id):
            status.previous_model_id = status.model_id
        status.model_id, status.model_source, status.model_status = model.id, source, model.model_status
        status.model_origin = origin(res)
        res.created("model", name)
        ctx.checkpoint(res)
        outcome.event("ModelImport", f"importing model {model.model_name} ({model.id}) from {source}")
        return model

    def _service(self, res: Svc, ctx: Context, model_id: str, outcome: Outcome) -> Service:
        cloud, status = ctx.cloud(res), res.status
        if status.service_id:
            service = none_if_gone(lambda: cloud.modelarts.get_service(status.service_id))
            if service is not None:
                return service
            if adoption.adopted(res, "service", status.service_id):
                raise adoption.missing(res, "service", status.service_id)
            outcome.event("CloudResourceMissing", f"service {status.service_id} was deleted outside the "
                          "operator; deploying it again", warning=True)
        elif external := adoption.wanted(res):  # made by hand: from now on kept as the spec says (model, scale)
            service = adoption.adopt("service", external, adoption.EXTERNAL_NAME, cloud.modelarts.get_service,
                                     cloud.modelarts.find_service)
            status.service_id, status.cloud_name = service.id, service.service_name
            adoption.took_over(res, ctx, outcome, "service", service.id, service.service_name)
            return service
        service, created = cloud.modelarts.ensure_service(desired(res, model_id),
                                                          before_create=lambda: ctx.begin_create(res, "service"))
        if created:
            ctx.crashpoint("service")
        status.service_id, status.cloud_name = service.id, res.cloud_name
        res.created("service")
        ctx.checkpoint(res)
        outcome.event("Deploying" if created else "Adopted", f"service {service.service_name} ({service.id}) with "
                      f"{res.spec.instance_count} x {res.spec.flavor}")
        return service

    @staticmethod
    def _serving(res: Svc) -> bool:
        """A model is imported and the service deployed with it."""
        status = res.status
        return status.model_status == "published" and bool(status.model_id and status.service_id)

    def _settled(self, res: Svc) -> bool:
        """The model of the spec's source is imported and the service deployed: from here on the
        service's own state is its readiness, and the TrainingJob is not read again until the source
        changes (a later failure or deletion of the job, or a rescale, does not touch it)."""
        status = res.status
        return self._serving(res) and status.model_origin == origin(res) and not status.previous_model_id

    def reconcile(self, res: Svc, ctx: Context) -> Outcome:
        status = res.status
        cloud = ctx.cloud(res)
        outcome = Outcome(requeue=Requeue.FAST)
        held_back: WaitingForDependency | DependencyFailed | None = None
        gate: Cond | None = None
        model_id = status.model_id
        if not self._settled(res):
            try:
                source, job = self._source(res, ctx)
            except (WaitingForDependency, DependencyFailed) as exc:
                if not self._serving(res):
                    raise
                held_back = exc  # the new source is not ready: keep serving the current model meanwhile
            else:
                gate = self._gate(res, ctx, source, job, outcome)
                if gate is None:
                    model = self._model(res, ctx, source, job["status"].get("jobId") if job else None, outcome)
                    status.model_status = model.model_status
                    waiting = model_condition(model.model_status, model.failed_msg)
                    if waiting is not None:
                        outcome.conditions = [waiting, synced()]
                        outcome.requeue = Requeue.FAST if waiting.reason is Reason.IMPORTING else Requeue.TERMINAL
                        return outcome
                    model_id = model.id
                elif gate.status == "False":  # nothing deployed: wait for a better model or a lower gate
                    outcome.conditions, outcome.requeue = [gate, synced(f"waiting: {gate.message}")], Requeue.STABLE
                    return outcome

        service = self._service(res, ctx, model_id, outcome)
        want = desired(res, model_id)
        changes = service.matches(want)
        if changes and service.status not in (ServiceStatus.DEPLOYING, ServiceStatus.DELETING):
            cloud.modelarts.update_service(service.id, want, changes)
            outcome.event("Updating", f"service {service.id}: {', '.join(changes)} changed")
            service = cloud.modelarts.get_service(service.id)

        previous = status.previous_model_id
        if previous and service.status == ServiceStatus.RUNNING and not service.matches(want):
            cloud.modelarts.delete_model(previous)
            status.previous_model_id = None
            outcome.event("ModelReplaced", f"service runs model {model_id}; deleted the previous model {previous}")

        condition = service_condition(service.status, service.progress, service.error_msg)
        if service.status != status.phase:
            outcome.event(service.status.capitalize() or "Deploying", condition.message,
                          warning=condition.reason.terminal)
        status.service_id, status.phase = service.id, service.status
        status.endpoint = service.access_address or None
        status.instance_count = service.config[0].instance_count if service.config else None
        outcome.conditions = [condition, synced()]
        if held_back is not None:
            if condition.reason is Reason.RUNNING:
                condition = ready(Reason.RUNNING, f"service running the model from {status.model_origin}; "
                                  f"not rolled over yet: {held_back}")
            outcome.conditions = [condition, synced(f"waiting: {held_back}")]
            outcome.requeue = Requeue.STABLE if isinstance(held_back, DependencyFailed) else Requeue.FAST
            return outcome
        if gate is not None:  # below the gate: the service says so while it serves the model it has
            outcome.conditions = [gate if condition.reason is Reason.RUNNING else condition,
                                  synced(f"not rolled over: {gate.message}")]
        if condition.reason.terminal:
            outcome.requeue = Requeue.TERMINAL
        elif condition.reason is Reason.RUNNING and not changes and not previous:
            outcome.requeue = Requeue.STABLE
        return outcome

    def finalize(self, res: Svc, ctx: Context) -> str | None:
        """Delete the service, wait for it to be gone, then delete its models (those recorded, and those
        whose import answer was lost). None while waiting."""
        cloud = ctx.cloud(res)  # credentials are read at the first call: none when there is nothing to delete
        service_id = res.cloud_id("service_id", "service", cloud.modelarts.find_service)
        if service_id is not None:
            service = none_if_gone(lambda: cloud.modelarts.get_service(service_id))
            if service is not None:
                if service.status != "deleting":
                    cloud.modelarts.delete_service(service_id)
                return None
        models = {m for m in (res.status.model_id, res.status.previous_model_id) if m}
        for name in res.pending_names("model"):
            found = cloud.modelarts.find_model(name)
            if found is not None:
                models.add(found.id)
        for model_id in sorted(models):
            cloud.modelarts.delete_model(model_id)
        return f"deleted service {service_id or '(none)'} and {len(models)} model(s)"
