"""Resource types, the registry of what is served, and the discovery and OpenAPI documents."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import Cause

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-localkube",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass
class ResourceType:
    group: str  # "" for the core group
    versions: list[str]  # served versions; the first is the storage and preferred one
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    status_subresource: bool = False
    custom: bool = False  # defined by a CRD: generation, schema, CEL, merge-patch only
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # version -> openAPIV3Schema
    columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # version -> printer columns
    selectable_fields: dict[str, list[str]] = field(default_factory=dict)  # version -> selectableFields paths

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def api_version(self, version: str | None = None) -> str:
        version = version or self.versions[0]
        return f"{self.group}/{version}" if self.group else version

    def schema(self, version: str) -> dict[str, Any] | None:
        return self.schemas.get(version)


BUILTINS = [
    ResourceType("", ["v1"], "namespaces", "namespace", "Namespace", False, ["ns"], [], status_subresource=True),
    ResourceType("", ["v1"], "secrets", "secret", "Secret", True, [], []),
    ResourceType("", ["v1"], "configmaps", "configmap", "ConfigMap", True, ["cm"], []),
    ResourceType("", ["v1"], "events", "event", "Event", True, ["ev"], []),
    ResourceType("events.k8s.io", ["v1"], "events", "event", "Event", True, ["ev"], []),
    ResourceType(
        "apiextensions.k8s.io",
        ["v1"],
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        False,
        ["crd", "crds"],
        ["api-extensions"],
        status_subresource=True,
    ),
]
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")


def resource_type_from_crd(crd: dict[str, Any]) -> ResourceType:
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served", True)]
    # The storage version goes first: objects are kept in it and it is the preferred one.
    served.sort(key=lambda v: not v.get("storage", False))
    return ResourceType(
        group=spec["group"],
        versions=[v["name"] for v in served],
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=list(names.get("shortNames") or []),
        categories=list(names.get("categories") or []),
        status_subresource=any("status" in (v.get("subresources") or {}) for v in served),
        custom=True,
        schemas={v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {} for v in served},
        columns={v["name"]: list(v.get("additionalPrinterColumns") or []) for v in served},
        selectable_fields={v["name"]: [f["jsonPath"] for f in v.get("selectableFields") or [] if f.get("jsonPath")]
                           for v in served},
    )


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    """The structural checks a CRD must pass before its resource can be served."""
    spec = crd.get("spec") or {}
    causes: list[Cause] = []
    for path in ("group", "names.plural", "names.kind", "versions"):
        node: Any = spec
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if not node:
            causes.append(Cause(f"spec.{path}", "FieldValueRequired", "Required value"))
    if causes:
        return causes
    for index, version in enumerate(spec["versions"] if isinstance(spec["versions"], list) else [None]):
        schema = (version.get("schema") or {}) if isinstance(version, dict) else None
        if not isinstance(version, dict) or not version.get("name"):
            causes.append(Cause(f"spec.versions[{index}].name", "FieldValueRequired", "Required value"))
        elif not isinstance(schema, dict) or not isinstance(schema.get("openAPIV3Schema", {}), dict):
            causes.append(Cause(f"spec.versions[{index}].schema.openAPIV3Schema", "FieldValueInvalid",
                                'Invalid value: "string": must be an object'))
    if causes:
        return causes
    expected = f"{spec['names']['plural']}.{spec['group']}"
    if crd["metadata"].get("name") != expected:
        causes.append(
            Cause(
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{crd["metadata"].get("name")}": must be spec.names.plural+"."+spec.group',
            )
        )
    if sum(1 for v in spec["versions"] if v.get("storage")) != 1:
        causes.append(
            Cause("spec.versions", "FieldValueInvalid", "Invalid value: ...: must have exactly one version marked as storage version")
        )
    if spec.get("scope", "Namespaced") not in ("Namespaced", "Cluster"):
        causes.append(
            Cause("spec.scope", "FieldValueNotSupported", f'Unsupported value: "{spec["scope"]}": supported values: "Cluster", "Namespaced"')
        )
    return causes


class Registry:
    """What the server serves: built-in resources plus one entry per established CRD."""

    def __init__(self) -> None:
        self.types: dict[tuple[str, str], ResourceType] = {rt.key: rt for rt in BUILTINS}

    def register(self, rt: ResourceType) -> None:
        self.types[rt.key] = rt

    def unregister(self, key: tuple[str, str]) -> None:
        self.types.pop(key, None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self.types.get((group, plural))
        return rt if rt is not None and version in rt.versions else None

    def group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for rt in self.types.values():
            versions = groups.setdefault(rt.group, [])
            for version in rt.versions:
                if version not in versions:
                    versions.append(version)
        return groups

    # -- discovery documents -------------------------------------------------------------

    def core_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        }

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def group_list(self) -> dict[str, Any]:
        groups = [self._group(g, vs) for g, vs in sorted(self.group_versions().items()) if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not group or not versions:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group(group, versions)}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        types = [rt for rt in self.types.values() if rt.group == group and version in rt.versions]
        if not types:
            return None
        resources = []
        for rt in sorted(types, key=lambda t: t.plural):
            resources.append(
                {
                    "name": rt.plural,
                    "singularName": rt.singular,
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ALL_VERBS,
                    "shortNames": rt.short_names,
                    "categories": rt.categories,
                    "storageVersionHash": hashlib.sha256(json.dumps(rt.key).encode()).hexdigest()[:11],
                }
            )
            if rt.status_subresource:
                resources.append(
                    {"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                     "kind": rt.kind, "verbs": ["get", "patch", "update"]}
                )
        group_version = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}

    # -- OpenAPI v3 ------------------------------------------------------------------------

    def openapi_v3_root(self) -> dict[str, Any]:
        paths = {}
        for group, versions in self.group_versions().items():
            for version in versions:
                path = f"apis/{group}/{version}" if group else f"api/{version}"
                doc = self.openapi_v3(group, version)
                digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
                paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
        return {"paths": paths}

    def openapi_v3(self, group: str, version: str) -> dict[str, Any] | None:
        """One group-version's OpenAPI document.

        kubectl reads it to learn that the server validates fields itself (the `fieldValidation`
        parameter on PATCH) and, for custom resources, the schema; built-in schemas are left open
        since kubectl carries their Go types.
        """
        types = [rt for rt in self.types.values() if rt.group == group and version in rt.versions]
        if not types:
            return None
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        schemas: dict[str, Any] = {}
        paths: dict[str, Any] = {}
        for rt in types:
            gvk = [{"group": group, "version": version, "kind": rt.kind}]
            name = f"{_reverse(group)}.{version}.{rt.kind}"
            schema = dict(rt.schema(version) or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
            schema["x-kubernetes-group-version-kind"] = gvk
            schemas[name] = schema
            ref = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
            params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
            operation = {"parameters": params, "responses": {"200": {"description": "OK", **ref}},
                         "x-kubernetes-group-version-kind": gvk[0]}
            item = f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}" if rt.namespaced else f"{prefix}/{rt.plural}/{{name}}"
            collection = item.rsplit("/", 1)[0]
            paths[item] = {"get": operation, "put": operation, "patch": operation, "delete": operation}
            paths[collection] = {"get": operation, "post": operation}
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths,
            "components": {"schemas": schemas},
        }


def _reverse(group: str) -> str:
    """OpenAPI definition names use the reversed group ("io.k8s.api.core" style)."""
    return ".".join(reversed(group.split("."))) if group else "io.k8s.api.core"
