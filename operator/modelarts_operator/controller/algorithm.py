"""ModelArtsAlgorithm: put the training code in OBS, create the algorithm, keep both there."""

from __future__ import annotations

import shutil
from pathlib import Path

from modelarts_operator.api.v1alpha1 import ModelArtsAlgorithmSpec
from modelarts_operator.cloud import ObsUrl
from modelarts_operator.cloud.errors import none_if_gone
from modelarts_operator.cloud.resources import AlgorithmParameter, AlgorithmSpec
from modelarts_operator.controller import status as st
from modelarts_operator.controller.context import Context, Outcome, Resource, ResourceProblem


def _local_code(res: Resource, ctx: Context) -> Path | None:
    """The folder to upload (builtin or ConfigMap code), or None when the code is already in OBS."""
    code = res.spec.code
    if code.builtin:
        folder = ctx.settings.builtin_code_dir
        if not (folder / res.spec.boot_file).is_file():
            raise ResourceProblem("CodeMissing", f"the builtin code has no {res.spec.boot_file} (looked in {folder})")
        return folder
    if code.config_map:
        data = ctx.kube.config_map_data(res.namespace, code.config_map)
        if data is None:
            raise ResourceProblem("CodeMissing", f"ConfigMap {res.namespace}/{code.config_map} not found")
        if res.spec.boot_file not in data:
            raise ResourceProblem("CodeMissing", f"ConfigMap {code.config_map} has no key {res.spec.boot_file}")
        folder = ctx.settings.work_dir / "code" / res.uid
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, content in data.items():
            (folder / name).write_text(content)
        return folder
    return None


def code_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def cloud_spec(res: Resource, code_dir: ObsUrl) -> AlgorithmSpec:
    spec: ModelArtsAlgorithmSpec = res.spec
    return AlgorithmSpec(
        name=res.cloud_name, code_dir=code_dir.api_path, boot_file=code_dir.join(spec.boot_file).api_path,
        engine_name=spec.engine.name, engine_version=spec.engine.version, inputs=spec.inputs, outputs=spec.outputs,
        parameters=[AlgorithmParameter(name=p.name, value=p.default, description=p.description) for p in spec.parameters],
        description=f"{res.ref} (managed by modelarts-operator)",
    )


def reconcile(res: Resource, ctx: Context) -> Outcome:
    spec: ModelArtsAlgorithmSpec = res.spec
    cloud = ctx.cloud(res)
    outcome = Outcome()
    folder = _local_code(res, ctx)
    if folder is not None:
        code_dir = ObsUrl.parse(spec.code.upload_to)
        cloud.obs.ensure_bucket(code_dir.bucket)
        report = cloud.obs.upload_folder(folder, code_dir)
        if report.uploaded:
            outcome.event("CodeUploaded", f"{len(report.uploaded)} files ({report.bytes_sent} bytes) to {code_dir}")
        uploaded = sorted({*report.uploaded, *report.skipped, *res.status.get("uploadedFiles", [])})
        if uploaded != res.status.get("uploadedFiles"):  # recorded now: finalize deletes exactly these
            ctx.record(res, uploadedFiles=uploaded)
        files = len(report.uploaded) + len(report.skipped)
    else:
        code_dir = ObsUrl.parse(spec.code.obs_path)
        names = {o.key[len(code_dir.key):] for o in cloud.obs.list(code_dir)}
        if spec.boot_file not in names:
            raise ResourceProblem("CodeMissing", f"boot file {spec.boot_file} not found in {code_dir}")
        files = len(names)

    algorithm = None
    if res.status.get("algorithmId"):
        algorithm = none_if_gone(lambda: cloud.modelarts.get_algorithm(res.status["algorithmId"]))
        if algorithm is None:
            outcome.event("CloudResourceMissing", f"algorithm {res.status['algorithmId']} was deleted "
                          "outside the operator; creating it again", warning=True)
    if algorithm is None:
        algorithm, created = cloud.modelarts.ensure_algorithm(cloud_spec(res, code_dir))
        if created:
            ctx.crashpoint("algorithm")
        ctx.record(res, algorithmId=algorithm.id, cloudName=res.cloud_name)
        outcome.event("Created" if created else "Adopted", f"algorithm {algorithm.name} ({algorithm.id})")
    outcome.status = {"algorithmId": algorithm.id, "cloudName": res.cloud_name, "codeLocation": str(code_dir),
                      "codeFiles": files, "message": f"algorithm {algorithm.id} runs {code_dir}{spec.boot_file}"}
    outcome.conditions = [st.ready("Created", f"algorithm {algorithm.id}"), st.synced()]
    return outcome


def finalize(res: Resource, ctx: Context) -> str:
    """Delete the algorithm and the code files the operator uploaded (never an obsPath's code)."""
    cloud = ctx.cloud(res)
    algorithm_id = res.cloud_id("algorithmId", cloud.modelarts.find_algorithm)
    if algorithm_id:
        cloud.modelarts.delete_algorithm(algorithm_id)
    # Exactly the files recorded at upload: the ConfigMap may be gone already (kubectl delete
    # namespace), and the folder may hold files that are not ours.
    names = res.status.get("uploadedFiles") or []
    if res.spec.code.upload_to:
        code_dir = ObsUrl.parse(res.spec.code.upload_to)
        for name in names:
            cloud.obs.delete_object(code_dir.join(name))
    shutil.rmtree(ctx.settings.work_dir / "code" / res.uid, ignore_errors=True)
    removed = len(names)
    return f"deleted algorithm {algorithm_id or '(none)'} and {removed} code files"
