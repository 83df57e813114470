"""Models (v1 "AI applications"): import = copy `<source_location>/model/` from OBS and validate it.

publishing -> published, or failed with the package problems in `failed_msg` (an emulator field:
the public docs name no field for the reason).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import uuid
from pathlib import Path

from modelarts_operator.local.serving.package import MODEL_TYPES, validate_model_package

from . import checks
from .algorithms import now_ms
from .errors import ApiError, bad_request, duplicate_model, model_not_found
from .obs import LocalObs, parse_obs_url
from .state import State

log = logging.getLogger(__name__)

VERSION_RE = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
API_MODEL_TYPES = (*MODEL_TYPES, "MindSpore")
SUMMARY_KEYS = (
    "model_name", "model_version", "model_id", "model_type", "model_size", "model_status", "tenant", "project",
    "owner", "create_at", "description", "workspace_id", "specification", "source_type", "install_type",
)


class Models:
    def __init__(self, state: State, obs: LocalObs, work_dir: Path, project_id: str) -> None:
        self.state = state
        self.obs = obs
        self.work_dir = work_dir
        self.project_id = project_id
        self._imports: set[asyncio.Task] = set()

    def get(self, model_id: str) -> dict:
        model = self.state.models.get(model_id)
        if model is None:
            raise model_not_found(model_id)
        return model

    def package_dir(self, model_id: str) -> Path:
        return self.work_dir / "models" / model_id / "model"

    def create(self, body: dict) -> dict:
        name = checks.string(body, "model_name", "body", pattern=MODEL_NAME_RE)
        version = checks.string(body, "model_version", "body", pattern=VERSION_RE)
        model_type = checks.string(body, "model_type", "body")
        if model_type not in API_MODEL_TYPES:
            raise bad_request(f"body.model_type {model_type!r} is not one of {', '.join(API_MODEL_TYPES)}")
        if model_type == "Template":
            raise bad_request("body.model_type Template is not supported by the local cloud")
        source = checks.string(body, "source_location", "body")
        try:
            parse_obs_url(source)
        except ValueError as exc:
            raise bad_request(f"body.source_location: {exc}") from None
        install_type = checks.array(body.get("install_type"), "body.install_type") or ["real-time", "batch"]
        if any(m["model_name"] == name and m["model_version"] == version for m in self.state.models.values()):
            raise duplicate_model(name, version)
        model_id = str(uuid.uuid4())
        model = {
            "model_id": model_id, "model_name": name, "model_version": version, "runtime": body.get("runtime", ""),
            "tenant": self.project_id, "project": self.project_id, "owner": self.project_id,
            "source_location": source, "source_job_id": body.get("source_job_id", ""),
            "source_job_version": body.get("source_job_version", ""), "source_type": "",
            "model_type": model_type, "model_size": 0, "model_status": "publishing",
            "description": body.get("description", ""), "execution_code": body.get("execution_code", ""),
            "image_address": "", "input_params": body.get("input_params", []),
            "output_params": body.get("output_params", []), "dependencies": body.get("dependencies", []),
            "model_algorithm": body.get("model_algorithm", ""), "model_metrics": body.get("model_metrics", ""),
            "apis": json.dumps(body.get("apis", [])), "model_labels": [], "labels_map": {"labels": []},
            "workspace_id": body.get("workspace_id", "0"), "install_type": install_type, "specification": {},
            "config": "", "create_at": now_ms(),
        }
        self.state.models[model_id] = model
        self.state.save()
        self.start_import(model_id)
        return model

    def start_import(self, model_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._import(model_id), name=f"import-{model_id}")
        self._imports.add(task)
        task.add_done_callback(self._imports.discard)

    async def _import(self, model_id: str) -> None:
        model = self.state.models[model_id]
        target = self.package_dir(model_id)
        shutil.rmtree(target, ignore_errors=True)
        source = model["source_location"].rstrip("/") + "/model/"
        try:
            count = await asyncio.to_thread(self.obs.download, source, target)
            problems = await asyncio.to_thread(validate_model_package, target) if count else [
                f"no files under {source}"
            ]
        except Exception as exc:  # OBS errors (no such bucket...) fail the import, as on ModelArts
            problems = [f"cannot read {source}: {exc}"]
        if self.state.models.get(model_id) is not model:
            shutil.rmtree(target.parent, ignore_errors=True)
            return  # deleted while importing
        if problems:
            model["model_status"] = "failed"
            model["failed_msg"] = "; ".join(problems)
        else:
            config = json.loads((target / "config.json").read_text(encoding="utf-8"))
            model["model_status"] = "published"
            model["model_size"] = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
            model["config"] = json.dumps(config)
            model["model_metrics"] = model["model_metrics"] or json.dumps(config.get("metrics", {}))
            model["apis"] = json.dumps(config.get("apis", []))
            model["runtime"] = model["runtime"] or config.get("runtime", "")
            model["model_algorithm"] = model["model_algorithm"] or config.get("model_algorithm", "")
            model["dependencies"] = model["dependencies"] or config.get("dependencies", [])
        self.state.save()

    def list(self, query) -> dict:
        offset, limit, order = checks.paging(query, 1000, 1000)
        models = list(self.state.models.values())
        name = query.get("model_name")
        if name:
            exact = query.get("exact_match") == "true"
            models = [m for m in models if (m["model_name"] == name if exact else name in m["model_name"])]
        for key in ("model_version", "model_status", "model_type"):
            if query.get(key):
                models = [m for m in models if m[key] == query[key]]
        models.sort(key=lambda m: m["create_at"], reverse=order == "desc")
        page = models[offset:offset + limit]
        return {"total_count": len(models), "count": len(page), "models": [{k: m[k] for k in SUMMARY_KEYS} for m in page]}

    def delete(self, model_id: str, in_use: bool) -> dict:
        self.get(model_id)
        if in_use:
            failure = ApiError(
                200, "ModelArts.3009",
                f"Failed to delete model because the model ({model_id}) has been used to deploy a service.",
            )
            return {"delete_success_list": [], "delete_failed_list": [dict(failure.body(), model_id=model_id)]}
        del self.state.models[model_id]
        self.state.save()
        shutil.rmtree(self.package_dir(model_id).parent, ignore_errors=True)
        return {"delete_success_list": [model_id], "delete_failed_list": []}

    async def shutdown(self) -> None:
        for task in list(self._imports):
            task.cancel()
        await asyncio.gather(*self._imports, return_exceptions=True)
