"""Algorithms (v2): records as ModelArts shows them, checked on create."""

from __future__ import annotations

import time
import uuid

from . import checks
from .errors import algorithm_not_found, bad_request, duplicate_algorithm
from .state import State

DEFAULT_CONSTRAINT = {
    "type": "String", "editable": True, "required": False, "sensitive": False, "valid_type": "None", "valid_range": [],
}


def now_ms() -> int:
    return int(time.time() * 1000)


def engine_record(engine: dict, where: str) -> dict:
    """engine_id is derived as ModelArts does it: from the name and version (or the image)."""
    engine = checks.obj(engine, where, required=False)
    if engine.get("image_url"):
        return {"engine_id": "", "engine_name": "", "engine_version": "", "image_url": checks.string(engine, "image_url", where)}
    name = checks.string(engine, "engine_name", where, required=False) or "TensorFlow"
    version = checks.string(engine, "engine_version", where, required=False) or "TF-2.x-python3"
    engine_id = checks.string(engine, "engine_id", where, required=False) or f"{name}-{version}".lower().replace(" ", "-")
    return {"engine_id": engine_id, "engine_name": name, "engine_version": version}


def parameter_records(parameters: list, where: str) -> list[dict]:
    records = []
    for i, item in enumerate(checks.array(parameters, where)):
        item = checks.obj(item, f"{where}[{i}]")
        name = checks.string(item, "name", f"{where}[{i}]")
        value = item.get("value", "")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad_request(f"{where}[{i}].value must be a string")
        constraint = dict(DEFAULT_CONSTRAINT, **checks.obj(item.get("constraint"), f"{where}[{i}].constraint", required=False))
        records.append({
            "name": name, "description": item.get("description", ""), "i18n_description": None,
            "value": str(value), "constraint": constraint,
        })
    return records


def io_records(entries: list, where: str) -> list[dict]:
    records = []
    for i, item in enumerate(checks.array(entries, where)):
        item = checks.obj(item, f"{where}[{i}]")
        records.append({"name": checks.string(item, "name", f"{where}[{i}]"), "description": item.get("description", "")})
    return records


def job_config_record(body: dict, code_files: list[str]) -> dict:
    job_config = checks.obj(body.get("job_config"), "job_config", required=False)
    code_dir = checks.string(job_config, "code_dir", "job_config", required=False) or ""
    boot_file = checks.string(job_config, "boot_file", "job_config", required=False) or ""
    command = checks.string(job_config, "command", "job_config", required=False) or ""
    if code_dir and boot_file and not boot_file.startswith(code_dir.rstrip("/") + "/"):
        raise bad_request(f"job_config.boot_file {boot_file} is not inside job_config.code_dir {code_dir}")
    if boot_file and not code_dir:
        raise bad_request("job_config.code_dir is required with job_config.boot_file")
    return {
        "code_dir": code_dir, "boot_file": boot_file, "command": command,
        "parameters": parameter_records(job_config.get("parameters"), "job_config.parameters"),
        "parameters_customization": bool(job_config.get("parameters_customization", True)),
        "inputs": io_records(job_config.get("inputs"), "job_config.inputs"),
        "outputs": io_records(job_config.get("outputs"), "job_config.outputs"),
        "engine": engine_record(job_config.get("engine"), "job_config.engine"),
        "code_tree": {
            "name": code_dir.rstrip("/").rsplit("/", 1)[-1] + "/" if code_dir else "",
            "children": [{"name": f} for f in code_files],
        },
    }


class Algorithms:
    def __init__(self, state: State, domain_id: str) -> None:
        self.state = state
        self.domain_id = domain_id

    def get(self, algorithm_id: str) -> dict:
        record = self.state.algorithms.get(algorithm_id)
        if record is None:
            raise algorithm_not_found()
        return record

    def create(self, body: dict, code_files: list[str]) -> dict:
        """`code_files`: the names found under code_dir in OBS (the code tree)."""
        metadata = checks.obj(body.get("metadata"), "metadata")
        name = checks.string(metadata, "name", "metadata", pattern=checks.NAME_RE)
        if any(a["metadata"]["name"] == name for a in self.state.algorithms.values()):
            raise duplicate_algorithm(name)
        record = {
            "metadata": {
                "id": str(uuid.uuid4()), "name": name, "description": metadata.get("description", ""),
                "create_time": now_ms(), "workspace_id": metadata.get("workspace_id", "0"),
                "ai_project": "default-ai-project", "user_name": "", "domain_id": self.domain_id, "source": "custom",
                "api_version": "", "is_valid": True, "state": "", "size": 0, "tags": metadata.get("tags"),
                "attr_list": None, "version_num": 0, "update_time": 0,
            },
            "job_config": job_config_record(body, code_files),
            "resource_requirements": body.get("resource_requirements"),
            "advanced_config": checks.obj(body.get("advanced_config"), "advanced_config", required=False),
        }
        self.state.algorithms[record["metadata"]["id"]] = record
        self.state.save()
        return record

    def update(self, algorithm_id: str, body: dict, code_files: list[str]) -> dict:
        """PUT (ChangeAlgorithm): a new job_config (code folder, boot file, ...) for the same algorithm."""
        record = self.get(algorithm_id)
        record["job_config"] = job_config_record(body, code_files)
        metadata = checks.obj(body.get("metadata"), "metadata", required=False)
        if "description" in metadata:
            record["metadata"]["description"] = metadata["description"]
        record["metadata"]["update_time"] = now_ms()
        self.state.save()
        return record

    def delete(self, algorithm_id: str) -> None:
        self.get(algorithm_id)
        del self.state.algorithms[algorithm_id]
        self.state.save()

    def list(self, query) -> dict:
        offset, limit, order = checks.paging(query, 10, 50)
        items = list(self.state.algorithms.values())
        searches = query.get("searches") or ""
        for search in filter(None, searches.split(",")):
            key, _, text = search.partition(":")
            if key != "name":
                raise bad_request(f"query parameter searches: unsupported key {key!r} (name:<text>)")
            items = [a for a in items if text.lower() in a["metadata"]["name"].lower()]
        items.sort(key=lambda a: a["metadata"]["create_time"], reverse=order == "desc")
        page = items[offset:offset + limit]
        return {
            "total": len(items), "count": len(page), "limit": limit, "offset": offset,
            "sort_by": "create_time", "order": order, "group_by": "", "items": page,
        }
