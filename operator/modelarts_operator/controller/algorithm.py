"""ModelArtsAlgorithm: put the training code in OBS, create the algorithm, keep both there."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from modelarts_operator.api.conditions import Reason, ready, synced
from modelarts_operator.api.kinds import ALGORITHM
from modelarts_operator.api.v1alpha1 import ModelArtsAlgorithmSpec, ModelArtsAlgorithmStatus
from modelarts_operator.cloud import CloudError, ErrorKind, ObsUrl
from modelarts_operator.cloud.errors import MODELARTS_CODES, OBS_CODES, none_if_gone
from modelarts_operator.cloud.resources import AlgorithmParameter, AlgorithmSpec
from modelarts_operator.controller import adoption
from modelarts_operator.controller.base import KindController
from modelarts_operator.controller.context import Context, Outcome, Resource
from modelarts_operator.controller.errors import ResourceProblem

Algorithm = Resource[ModelArtsAlgorithmSpec, ModelArtsAlgorithmStatus]


def code_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def uploaded_urls(res: Algorithm) -> list[str]:
    """status.uploadedFiles as OBS URLs (older operators recorded names relative to the code folder)."""
    base = res.status.code_location or res.spec.code.upload_to
    return [name if name.startswith("obs://") or not base else str(ObsUrl.parse(base).join(name))
            for name in res.status.uploaded_files]


def cloud_spec(res: Algorithm, code_dir: ObsUrl) -> AlgorithmSpec:
    spec = res.spec
    return AlgorithmSpec(
        name=res.cloud_name, code_dir=code_dir.api_path, boot_file=code_dir.join(spec.boot_file).api_path,
        engine_name=spec.engine.name, engine_version=spec.engine.version, inputs=spec.inputs, outputs=spec.outputs,
        parameters=[AlgorithmParameter(name=p.name, value=p.default, description=p.description) for p in spec.parameters],
        description=f"{res.ref} (managed by modelarts-operator)",
    )


class AlgorithmController(KindController):
    kind = ALGORITHM
    reasons = frozenset({Reason.CREATED, Reason.CODE_MISSING, Reason.ADOPTION_FAILED, Reason.CLOUD_RESOURCE_MISSING})
    cloud_codes = {**MODELARTS_CODES, **OBS_CODES}

    def __init__(self) -> None:
        # uid -> (generation, code version) last uploaded: a stable algorithm re-reads its ConfigMap
        # (one Kubernetes GET) but neither rewrites nor re-uploads unchanged code.
        self._synced: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def _code_version(self, res: Algorithm, ctx: Context) -> tuple[str, dict[str, str] | None]:
        """A version of the local code ('builtin', the ConfigMap's resourceVersion) and its files."""
        code = res.spec.code
        if code.builtin:
            folder = ctx.settings.builtin_code_dir
            if not (folder / res.spec.boot_file).is_file():
                raise ResourceProblem(f"the builtin code has no {res.spec.boot_file} (looked in {folder})",
                                      Reason.CODE_MISSING)
            return "builtin", None
        found = ctx.kube.config_map(res.namespace, code.config_map)
        if found is None:
            raise ResourceProblem(f"ConfigMap {res.namespace}/{code.config_map} not found", Reason.CODE_MISSING)
        data, version = found
        if res.spec.boot_file not in data:
            raise ResourceProblem(f"ConfigMap {res.namespace}/{code.config_map} has no key {res.spec.boot_file}",
                                  Reason.CODE_MISSING)
        return version, data

    def _upload(self, res: Algorithm, ctx: Context, data: dict[str, str] | None, code_dir: ObsUrl,
                outcome: Outcome) -> list[str]:
        """Upload the builtin or ConfigMap code to `code_dir`; returns the URLs of its files. Every URL
        is recorded before its upload: whatever happens next, the finalizer deletes exactly those."""
        if data is None:
            folder = ctx.settings.builtin_code_dir
        else:
            folder = ctx.settings.work_dir / "code" / res.uid
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for name, content in data.items():
                (folder / name).write_text(content)
        obs = ctx.cloud(res).obs
        obs.ensure_bucket(code_dir.bucket)  # first: unusable credentials fail here, before anything is recorded
        urls = [str(code_dir.join(name)) for name in code_files(folder)]
        recorded = sorted({*urls, *uploaded_urls(res)})
        if recorded != res.status.uploaded_files:
            res.status.uploaded_files = recorded
            ctx.checkpoint(res)
        report = obs.upload_folder(folder, code_dir)
        if report.uploaded:
            ctx.crashpoint("code")
            outcome.event("CodeUploaded", f"{len(report.uploaded)} files ({report.bytes_sent} bytes) to {code_dir}")
        return urls

    @staticmethod
    def _obs_code(res: Algorithm, ctx: Context, code_dir: ObsUrl) -> int:
        """The number of files in an obsPath code folder that holds the boot file."""
        try:
            names = {o.key[len(code_dir.key):] for o in ctx.cloud(res).obs.list(code_dir)}
        except CloudError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                raise ResourceProblem(f"code folder {code_dir} does not exist (no bucket {code_dir.bucket})",
                                      Reason.CODE_MISSING) from None
            raise
        if res.spec.boot_file not in names:
            raise ResourceProblem(f"boot file {res.spec.boot_file} not found in {code_dir}", Reason.CODE_MISSING)
        return len(names)

    @staticmethod
    def _remove_stale(res: Algorithm, ctx: Context, current: list[str], outcome: Outcome) -> None:
        """Delete uploaded files that are no longer the algorithm's code (the code moved to another
        folder, or a file left the ConfigMap): only once the algorithm points at the new code."""
        stale = [url for url in uploaded_urls(res) if url not in current]
        for url in stale:
            ctx.cloud(res).obs.delete_object(ObsUrl.parse(url))
        if stale or res.status.uploaded_files != current:
            res.status.uploaded_files = current
            ctx.checkpoint(res)
        if stale:
            folders = sorted({url.rsplit("/", 1)[0] + "/" for url in stale})
            outcome.event("CodeCleaned", f"deleted {len(stale)} code files the algorithm no longer runs "
                          f"(from {', '.join(folders)})")

    def reconcile(self, res: Algorithm, ctx: Context) -> Outcome:
        spec, status = res.spec, res.status
        cloud = ctx.cloud(res)
        outcome = Outcome()
        current: list[str] | None = None  # the code's file URLs when synced now; None: unchanged since
        if spec.code.upload_to:
            code_dir = ObsUrl.parse(spec.code.upload_to)
            version, data = self._code_version(res, ctx)
            with self._lock:
                synced_before = self._synced.get(res.uid) == (res.generation, version)
            if not synced_before:
                current = self._upload(res, ctx, data, code_dir, outcome)
                status.code_files = len(current)
        else:
            code_dir = ObsUrl.parse(spec.code.obs_path)
            version = "obs"
            with self._lock:
                synced_before = self._synced.get(res.uid) == (res.generation, version)
            if not synced_before:
                status.code_files = self._obs_code(res, ctx, code_dir)
                current = []

        algorithm = None
        if status.algorithm_id:
            algorithm = none_if_gone(lambda: cloud.modelarts.get_algorithm(status.algorithm_id))
            if algorithm is None and adoption.adopted(res, "algorithm", status.algorithm_id):
                raise adoption.missing(res, "algorithm", status.algorithm_id)
            if algorithm is None:
                outcome.event("CloudResourceMissing", f"algorithm {status.algorithm_id} was deleted "
                              "outside the operator; creating it again", warning=True)
        elif external := adoption.wanted(res):
            algorithm = adoption.adopt("algorithm", external, adoption.EXTERNAL_NAME, cloud.modelarts.get_algorithm,
                                       cloud.modelarts.find_algorithm)
            status.algorithm_id, status.cloud_name = algorithm.id, algorithm.name
            adoption.took_over(res, ctx, outcome, "algorithm", algorithm.id, algorithm.name)
        if algorithm is None:
            algorithm, created = cloud.modelarts.ensure_algorithm(
                cloud_spec(res, code_dir), before_create=lambda: ctx.begin_create(res, "algorithm"))
            if created:
                ctx.crashpoint("algorithm")
            status.algorithm_id, status.cloud_name = algorithm.id, res.cloud_name
            res.created("algorithm")
            ctx.checkpoint(res)
            outcome.event("Created" if created else "Adopted", f"algorithm {algorithm.name} ({algorithm.id})")
        elif algorithm.code_dir != code_dir.api_path:  # uploadTo changed (or someone changed it in ModelArts)
            algorithm = cloud.modelarts.update_algorithm(algorithm.id, cloud_spec(res, code_dir))
            outcome.event("CodeMoved", f"algorithm {algorithm.id} now runs {code_dir}")
        if current is not None:
            self._remove_stale(res, ctx, current, outcome)
        with self._lock:
            self._synced[res.uid] = (res.generation, version)
        status.code_location = str(code_dir)
        outcome.conditions = [ready(Reason.CREATED, f"algorithm {algorithm.id} runs {code_dir}{spec.boot_file}"),
                              synced()]
        return outcome

    def finalize(self, res: Algorithm, ctx: Context) -> str:
        """Delete the algorithm and the code files the operator uploaded (never an obsPath's code)."""
        cloud = ctx.cloud(res)  # credentials are read at the first call: none when there is nothing to delete
        algorithm_id = res.cloud_id("algorithm_id", "algorithm", cloud.modelarts.find_algorithm)
        if algorithm_id:
            cloud.modelarts.delete_algorithm(algorithm_id)
        # Exactly the files recorded before their upload: the ConfigMap may be gone already (kubectl
        # delete namespace), and the folder may hold files that are not ours.
        urls = uploaded_urls(res)
        for url in urls:
            cloud.obs.delete_object(ObsUrl.parse(url))
        shutil.rmtree(ctx.settings.work_dir / "code" / res.uid, ignore_errors=True)
        with self._lock:
            self._synced.pop(res.uid, None)
        return f"deleted algorithm {algorithm_id or '(none)'} and {len(urls)} code files"
