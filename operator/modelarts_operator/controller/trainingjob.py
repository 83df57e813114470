"""TrainingJob: one run of an algorithm into the next output version folder, watched until it ends."""

from __future__ import annotations

import datetime
import time

from modelarts_operator.api.conditions import Cond, Reason, not_ready, ready, synced
from modelarts_operator.api.durations import parse_duration
from modelarts_operator.api.kinds import ALGORITHM, MNIST_DATASET, TRAINING_JOB
from modelarts_operator.api.v1alpha1 import TrainingJobSpec, TrainingJobStatus, shadows
from modelarts_operator.cloud import ObsUrl
from modelarts_operator.cloud.errors import MODELARTS_CODES, OBS_CODES, none_if_gone
from modelarts_operator.cloud.resources import TrainingJob
from modelarts_operator.cloud.resources import TrainingJobSpec as CloudJobSpec
from modelarts_operator.cloud.versions import find_version, reserve_version
from modelarts_operator.controller import adoption
from modelarts_operator.controller.base import KindController
from modelarts_operator.controller.context import Context, Outcome, Requeue, Resource
from modelarts_operator.controller.errors import ResourceProblem
from modelarts_operator.controller.packages import package_metrics
from modelarts_operator.controller.progress import Epoch, last_epoch
from modelarts_operator.controller.references import require_ready
from modelarts_operator.controller.workers import failed_worker, worker_states

Job = Resource[TrainingJobSpec, TrainingJobStatus]
FINISHED_WITH_LOG = ("Running", "Completed", "Failed", "Abnormal", "Terminated")


def job_ready(phase: str, secondary_phase: str, failure: str) -> Cond:
    """Completed is the only Ready; Failed, Terminated and Abnormal are terminal and say why."""
    if phase == "Completed":
        return ready(Reason.COMPLETED, "training finished")
    if phase == "Failed":
        return not_ready(Reason.FAILED, f"training failed: {failure}")
    if phase == "Abnormal":
        return not_ready(Reason.FAILED, f"training job abnormal ({secondary_phase}): {failure}")
    if phase == "Terminated":
        return not_ready(Reason.TERMINATED, "training job was terminated")
    progress = {"Pending": Reason.PENDING, "Running": Reason.RUNNING, "Terminating": Reason.TERMINATING}
    detail = f" ({secondary_phase})" if secondary_phase and secondary_phase != phase else ""
    return not_ready(progress.get(phase, Reason.CREATING), f"training job {phase or 'Creating'}{detail}")


def log_tail(log: str, lines: int = 20, max_chars: int = 2000) -> str:
    tail = "\n".join(log.rstrip().splitlines()[-lines:])
    return tail[-max_chars:]


def show_progress(status: TrainingJobStatus, epoch: Epoch | None) -> None:
    """The last epoch line into status. None keeps what is there: the log read is a tail, which a boot file
    printing much after an epoch line can push that line out of."""
    if epoch is not None:
        status.progress, status.epoch, status.epochs = epoch.progress, epoch.epoch, epoch.epochs
        status.epoch_metrics = epoch.metrics or None


def check_channels(spec: TrainingJobSpec, algorithm: dict) -> None:
    """The job's channels are the algorithm's, and no hyperparameter shadows one (refused before a run)."""
    inputs, outputs = algorithm["spec"].get("inputs") or [], algorithm["spec"].get("outputs") or []
    problems = [f"spec.inputs: {i.name} is not an input channel of the algorithm (it has {', '.join(inputs)})"
                for i in spec.inputs if i.name not in inputs]
    if spec.output.name not in outputs:
        problems.append(f"spec.output.name: {spec.output.name} is not an output channel of the algorithm "
                        f"(it has {', '.join(outputs)})")
    problems += [f"spec.hyperparameters: {name} is a channel of the algorithm, a prefix of one, or help"
                 for name in spec.hyperparameters if shadows(name, [*inputs, *outputs])]
    if problems:
        raise ResourceProblem("; ".join(problems), Reason.INVALID_SPEC)


def _inputs(res: Job, ctx: Context) -> dict[str, str]:
    inputs = {}
    for item in res.spec.inputs:
        if item.dataset_ref:
            dataset = require_ready(res, ctx, MNIST_DATASET, item.dataset_ref.name)
            inputs[item.name] = ObsUrl.parse(dataset["status"]["obsUrl"]).api_path
        else:
            inputs[item.name] = ObsUrl.parse(item.obs_path).api_path
    return inputs


def running_seconds(job: TrainingJob) -> int:
    """Running time so far: the cloud's duration, and while the job has not ended at least the time since
    it started. A cloud may fill in duration only once a job has ended (the local cloud does): read alone,
    maxRuntime would never stop a running job."""
    duration_ms = job.duration_ms
    if not job.finished and job.start_time_ms:
        duration_ms = max(duration_ms, int(time.time() * 1000) - job.start_time_ms)
    return duration_ms // 1000


def _started(job: TrainingJob) -> str | None:
    if not job.start_time_ms:
        return None
    when = datetime.datetime.fromtimestamp(job.start_time_ms / 1000, datetime.timezone.utc).replace(microsecond=0)
    return when.isoformat().replace("+00:00", "Z")


class TrainingJobController(KindController):
    kind = TRAINING_JOB
    reasons = frozenset({Reason.COMPLETED, Reason.CREATING, Reason.PENDING, Reason.RUNNING, Reason.TERMINATING,
                         Reason.FAILED, Reason.TERMINATED, Reason.MAX_RUNTIME_EXCEEDED,
                         Reason.CLOUD_RESOURCE_MISSING, Reason.ADOPTION_FAILED})
    cloud_codes = {**MODELARTS_CODES, **OBS_CODES}

    def _adopt(self, res: Job, ctx: Context, external: str, outcome: Outcome) -> TrainingJob:
        """Take over a job made outside the operator: its output is where it writes, whatever the spec says."""
        modelarts, status = ctx.cloud(res).modelarts, res.status
        job = adoption.adopt("training job", external, adoption.EXTERNAL_NAME, modelarts.get_training_job,
                             modelarts.find_training_job)
        channel = res.spec.output.name if res.spec.output.name in job.outputs else next(iter(job.outputs), "")
        output = job.output(channel)
        status.job_id, status.cloud_name = job.id, job.name
        status.version, status.output_path = job.output_version(channel), str(output) if output else None
        adoption.took_over(res, ctx, outcome, "trainingjob", job.id, job.name,
                           f", writing {status.output_path or '(no output)'}")
        return job

    def _create(self, res: Job, ctx: Context, outcome: Outcome) -> TrainingJob:
        """Reserve this job's own output version, then create the cloud job writing into it. Both are
        recorded as pending first: a finalizer after a lost answer finds the job by name and the
        version by this object's claim."""
        spec, status = res.spec, res.status
        cloud = ctx.cloud(res)
        algorithm = require_ready(res, ctx, ALGORITHM, spec.algorithm_ref.name)
        check_channels(spec, algorithm)
        inputs = _inputs(res, ctx)
        existing = cloud.modelarts.find_training_job(res.cloud_name)  # created before a crash: adopt it
        if existing is None:
            ctx.begin_create(res, "trainingjob")
            output = ObsUrl.parse(spec.output.obs_path)
            cloud.obs.ensure_bucket(output.bucket)
            status.version = reserve_version(cloud.obs, output, res.uid)
            status.output_path = str(output.join(status.version).folder())
            ctx.checkpoint(res)
            job, created = cloud.modelarts.ensure_training_job(CloudJobSpec(
                name=res.cloud_name, algorithm_id=algorithm["status"]["algorithmId"], inputs=inputs,
                outputs={spec.output.name: ObsUrl.parse(status.output_path).api_path},
                parameters=spec.hyperparameters, flavor_id=spec.resources.flavor,
                node_count=spec.resources.node_count, description=f"{res.ref} (managed by modelarts-operator)",
            ))
            if created:
                ctx.crashpoint("trainingjob")
        else:
            job, created = existing, False
        status.job_id, status.cloud_name = job.id, res.cloud_name
        output = job.output(spec.output.name)
        status.version = job.output_version(spec.output.name)
        status.output_path = str(output) if output else None
        res.created("trainingjob")
        ctx.checkpoint(res)
        outcome.event("Created" if created else "Adopted", f"training job {job.name} ({job.id}) writing "
                      f"{status.output_path or '(no output)'}")
        return job

    def reconcile(self, res: Job, ctx: Context) -> Outcome:
        spec, status = res.spec, res.status
        cloud = ctx.cloud(res)
        outcome = Outcome()
        if status.job_id is None:
            external = adoption.wanted(res)
            job = self._adopt(res, ctx, external, outcome) if external else self._create(res, ctx, outcome)
        else:
            job = none_if_gone(lambda: cloud.modelarts.get_training_job(status.job_id))
            if job is None:
                # Re-running training would cost money and give another model: report, do not recreate.
                outcome.conditions = [not_ready(Reason.CLOUD_RESOURCE_MISSING,
                                                f"training job {status.job_id} no longer exists in ModelArts; "
                                                "delete this TrainingJob and create a new one"), synced()]
                outcome.requeue = Requeue.TERMINAL
                return outcome

        previous_phase = status.phase
        duration = running_seconds(job)
        status.job_id, status.cloud_name, status.phase = job.id, job.name, job.phase
        status.secondary_phase, status.duration_seconds, status.start_time = (
            job.secondary_phase, duration, _started(job))
        limit = parse_duration(spec.max_runtime)
        if not job.finished and duration > limit and not status.stop_reason:
            cloud.modelarts.stop_training_job(job.id)
            status.stop_reason = "MaxRuntimeExceeded"
            outcome.event("MaxRuntimeExceeded", f"stopped after {duration}s (maxRuntime {spec.max_runtime})",
                          warning=True)
        # The log while it runs, and once more when it has finished: a finished job's log does not change.
        status.workers, status.failed_worker = worker_states(job), failed_worker(job)
        if job.phase in FINISHED_WITH_LOG and not (job.finished and previous_phase == job.phase and status.log_tail):
            log = cloud.modelarts.training_job_log(job.id)  # worker-0, the chief: its epochs are the progress
            status.log_tail = log_tail(log)
            show_progress(status, last_epoch(log, complete=job.finished))
            if status.failed_worker not in (None, "worker-0"):  # the log that says why
                status.log_tail = log_tail(cloud.modelarts.training_job_log(job.id, status.failed_worker))
        if job.phase == "Completed" and not status.metrics:
            status.metrics = package_metrics(cloud.obs, status.output_path)
        if job.phase != previous_phase:
            warning = job.phase in ("Failed", "Abnormal", "Terminated")
            outcome.event(job.phase or "Creating", f"training job {job.phase}"
                          + (f": {job.failure_message}" if warning else ""), warning=warning)
        condition = job_ready(job.phase, job.secondary_phase, job.failure_message)
        if status.stop_reason and job.phase not in ("Completed", "Failed", "Abnormal"):
            # from the stop on (it ends Terminated): the stop's own event is the one warning
            condition = not_ready(Reason.MAX_RUNTIME_EXCEEDED, f"stopped: ran longer than maxRuntime {spec.max_runtime}")
        outcome.conditions = [condition, synced()]
        outcome.requeue = Requeue.TERMINAL if job.finished else Requeue.FAST
        return outcome

    def finalize(self, res: Job, ctx: Context) -> str | None:
        """Stop a running job and wait for it to end, delete it, then delete its own output version
        folder (never another job's). Returns None while waiting (the finalizer stays), a summary when done."""
        cloud = ctx.cloud(res)  # credentials are read at the first call: none when there is nothing to delete
        job_id = res.cloud_id("job_id", "trainingjob", cloud.modelarts.find_training_job)
        if job_id is not None:
            job = none_if_gone(lambda: cloud.modelarts.get_training_job(job_id))
            if job is not None and not job.finished:
                if job.phase != "Terminating":
                    cloud.modelarts.stop_training_job(job_id)
                return None
            if job is not None:
                cloud.modelarts.delete_training_job(job_id)
                return None  # wait until it is really gone
        output_path = res.status.output_path
        if adoption.adopted(res, "trainingjob", job_id):  # its output folder is not the operator's: it made no version there
            return f"deleted the adopted training job {job_id or '(none)'}; its output is left in place"
        if output_path is None and res.is_pending("trainingjob"):  # reserved, then the answer was lost
            output = ObsUrl.parse(res.spec.output.obs_path)
            version = find_version(cloud.obs, output, res.uid)
            output_path = str(output.join(version).folder()) if version else None
        removed = cloud.obs.delete_prefix(ObsUrl.parse(output_path)) if output_path else 0
        return f"deleted training job {job_id or '(none)'} and {removed} output objects"
