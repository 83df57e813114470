"""The REST semantics of the API: what create, update, patch and delete do to objects.

HTTP parsing lives in `server.py`; storage and watch events in `store.py`. This module owns the
rules: server-set metadata, generation, the status subresource, finalizers and deletionTimestamp,
validation of custom resources, and CRDs registering their resources.
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
import uuid
from datetime import datetime, timezone
from typing import Any

from . import schema as schemas
from .discovery import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType, resource_type_from_crd, validate_crd
from .errors import ApiError, Cause, already_exists, bad_request, conflict, invalid, not_found
from .patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, json_patch, merge_patch, strategic_merge_patch
from .selectors import Predicate
from .store import Obj, Store

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the real server's generateName alphabet
# Fields the server owns: clients cannot set or change them.
_SERVER_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def present(rt: ResourceType, version: str, obj: Obj) -> Obj:
    """The object as served in `version` (no conversion: versions share one schema shape)."""
    return {"apiVersion": rt.api_version(version), "kind": rt.kind, **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}}


def _without_type(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def _spec_part(rt: ResourceType, obj: Obj) -> Obj:
    """What a generation counts: everything but metadata (and status, if it is a subresource)."""
    skip = {"metadata", "apiVersion", "kind"} | ({"status"} if rt.status_subresource else set())
    return {k: v for k, v in obj.items() if k not in skip}


class Api:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        for crd in store.items(CRD_KEY):
            if "deletionTimestamp" not in crd["metadata"] or self._has_instances(crd):
                registry.register(resource_type_from_crd(crd))
        for name in INITIAL_NAMESPACES:
            if store.get(NAMESPACE_KEY, "", name) is None:
                self.create(registry.types[NAMESPACE_KEY], "v1", "", {"metadata": {"name": name}})

    # -- reads -----------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt.key, namespace, name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def list(self, rt: ResourceType, namespace: str | None, accepts: Predicate) -> tuple[list[Obj], str]:
        items = [obj for obj in self.store.items(rt.key, namespace) if accepts(obj)]
        return items, str(self.store.rv)

    # -- create ----------------------------------------------------------------------------

    def create(self, rt: ResourceType, version: str, namespace: str, body: Any,
               dry_run: bool = False, strict: bool = False) -> tuple[Obj, list[str]]:
        obj = self._check_body(rt, version, body)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
            self._check_namespace_open(namespace)
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(rt.kind, rt.group, "", [Cause("metadata.name", "FieldValueRequired",
                                                             "Required value: name or generateName is required")])
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        self._check_name(rt, meta["name"])
        if self.store.get(rt.key, meta.get("namespace", ""), meta["name"]) is not None:
            raise already_exists(rt.plural, rt.group, meta["name"])
        self._check_owner_open(rt)
        for key in (*_SERVER_METADATA, "resourceVersion", "managedFields", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if rt.custom or rt.key == CRD_KEY:
            meta["generation"] = 1
        if rt.status_subresource:
            obj.pop("status", None)
        warnings = self._admit(rt, version, obj, None, strict)
        if dry_run:
            return present(rt, version, obj), warnings
        stored = self.store.put(rt.key, obj, "ADDED")
        if rt.key == CRD_KEY:
            self.registry.register(resource_type_from_crd(stored))
        return present(rt, version, stored), warnings

    # -- update and patch ------------------------------------------------------------------

    def update(self, rt: ResourceType, version: str, namespace: str, name: str, body: Any,
               subresource: str | None = None, dry_run: bool = False, strict: bool = False,
               require_version: bool = True) -> tuple[Obj, list[str]]:
        current = self.get(rt, namespace, name)
        obj = self._check_body(rt, version, body)
        meta = obj["metadata"]
        if meta.get("name", name) != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        wanted = meta.get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        if not wanted and require_version and rt.custom:
            raise invalid(rt.kind, rt.group, name, [Cause("metadata.resourceVersion", "FieldValueInvalid",
                                                          "Invalid value: 0x0: must be specified for an update")])
        if subresource == "status":
            # The status endpoint changes the status and nothing else.
            obj = {**current, "status": obj.get("status")}
            if obj["status"] is None:
                obj.pop("status")
        else:
            obj["metadata"] = self._carry_metadata(rt, current, meta)
            if rt.status_subresource:
                obj.pop("status", None)
                if "status" in current:
                    obj["status"] = current["status"]
        warnings = self._admit(rt, version, obj, current, strict)
        # Counted after defaulting, so a replace that restates defaults is no spec change.
        if (rt.custom or rt.key == CRD_KEY) and _spec_part(rt, obj) != _spec_part(rt, current):
            obj["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if _without_type(obj) == _without_type(current):
            return present(rt, version, current), warnings  # a no-op write is not stored, like the real server
        if dry_run:
            return present(rt, version, obj), warnings
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            return present(rt, version, self._remove(rt, obj)), warnings
        stored = self.store.put(rt.key, obj, "MODIFIED")
        if rt.key == CRD_KEY:
            self.registry.register(resource_type_from_crd(stored))
        return present(rt, version, stored), warnings

    def patch(self, rt: ResourceType, version: str, namespace: str, name: str, content_type: str, patch: Any,
              subresource: str | None = None, dry_run: bool = False, strict: bool = False) -> tuple[Obj, list[str]]:
        current = present(rt, version, self.get(rt, namespace, name))
        if content_type == MERGE_PATCH:
            if not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal into a merge patch: the patch is not an object")
            patched = merge_patch(current, patch)
        elif content_type == JSON_PATCH:
            patched = json_patch(current, patch)
        elif content_type == STRATEGIC_PATCH and not rt.custom and rt.key != CRD_KEY:
            if not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal into a strategic merge patch: the patch is not an object")
            patched = strategic_merge_patch(current, patch)
        else:
            accepted = [JSON_PATCH, MERGE_PATCH] + ([] if rt.custom or rt.key == CRD_KEY else [STRATEGIC_PATCH])
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}")
        return self.update(rt, version, namespace, name, patched, subresource, dry_run, strict, require_version=False)

    # -- delete ----------------------------------------------------------------------------

    def delete(self, rt: ResourceType, version: str, namespace: str, name: str,
               preconditions: dict[str, Any] | None = None, dry_run: bool = False) -> Obj:
        current = self.get(rt, namespace, name)
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and wanted != current["metadata"].get(key):
                raise ApiError(409, "Conflict", f"Precondition failed: {key} in precondition: {wanted}, "
                                                f"{key} in object meta: {current['metadata'].get(key)}",
                               {"name": name, "kind": rt.plural, **({"group": rt.group} if rt.group else {})})
        if dry_run:
            return present(rt, version, current)
        return present(rt, version, self._delete(rt, current))

    def _delete(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        owns_content = rt.key in (NAMESPACE_KEY, CRD_KEY)
        if not meta.get("finalizers") and not owns_content:
            return self._remove(rt, obj)
        if meta.get("deletionTimestamp"):
            return obj
        meta["deletionTimestamp"] = now()
        meta["deletionGracePeriodSeconds"] = 0
        if rt.key == NAMESPACE_KEY:
            obj.setdefault("status", {})["phase"] = "Terminating"
        obj = self.store.put(rt.key, obj, "MODIFIED")
        if owns_content:
            # Namespaces and CRDs empty themselves first; each content object honours its finalizers.
            for content_rt, item in self._contents(rt, obj):
                self._delete(content_rt, item)
            return self._finish_if_empty(rt, obj["metadata"]["name"]) or obj
        return obj

    def _remove(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        removed = self.store.remove(rt.key, obj)
        if rt.key == CRD_KEY:
            self.registry.unregister((removed["spec"]["group"], removed["spec"]["names"]["plural"]))
        if rt.namespaced:
            self._finish_if_empty(self.registry.types[NAMESPACE_KEY], meta["namespace"])
        if rt.custom:
            self._finish_if_empty(self.registry.types[CRD_KEY], f"{rt.plural}.{rt.group}")
        return removed

    def _contents(self, rt: ResourceType, owner: Obj) -> list[tuple[ResourceType, Obj]]:
        if rt.key == CRD_KEY:
            content_rt = self.registry.types.get((owner["spec"]["group"], owner["spec"]["names"]["plural"]))
            return [(content_rt, o) for o in self.store.items(content_rt.key)] if content_rt else []
        name = owner["metadata"]["name"]
        return [(t, o) for t in list(self.registry.types.values()) if t.namespaced for o in self.store.items(t.key, name)]

    def _has_instances(self, crd: Obj) -> bool:
        return any(True for _ in self.store.items((crd["spec"]["group"], crd["spec"]["names"]["plural"])))

    def _finish_if_empty(self, rt: ResourceType, name: str) -> Obj | None:
        owner = self.store.get(rt.key, "", name)
        if owner is None or not owner["metadata"].get("deletionTimestamp") or self._contents(rt, owner):
            return None
        if owner["metadata"].get("finalizers"):
            return None
        return self._remove(rt, owner)

    # -- checks ----------------------------------------------------------------------------

    def _check_body(self, rt: ResourceType, version: str, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request is not a {rt.kind} object")
        obj = copy.deepcopy(body)
        if obj.get("kind", rt.kind) != rt.kind:
            raise bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind ({rt.kind})")
        if obj.get("apiVersion", rt.api_version(version)) != rt.api_version(version):
            raise bad_request(f"the API version in the data ({obj['apiVersion']}) does not match the expected "
                              f"API version ({rt.api_version(version)})")
        obj["apiVersion"], obj["kind"] = rt.api_version(version), rt.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        for field in ("labels", "annotations"):
            values = meta.get(field)
            if values is not None and (not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())):
                raise bad_request(f"json: cannot unmarshal metadata.{field}: values must be strings")
        finalizers = meta.get("finalizers")
        if finalizers is not None and (not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)):
            raise bad_request("json: cannot unmarshal metadata.finalizers: must be a list of strings")
        return obj

    def _check_name(self, rt: ResourceType, name: str) -> None:
        pattern, kind = (_LABEL, "label") if rt.key == NAMESPACE_KEY else (_SUBDOMAIN, "subdomain")
        if len(name) > (63 if kind == "label" else 253) or not pattern.match(name):
            regex = pattern.pattern.strip("^$")
            raise invalid(rt.kind, rt.group, name, [Cause("metadata.name", "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase RFC 1123 {kind} must consist of lower case alphanumeric '
                f"characters, '-' or '.', and must start and end with an alphanumeric character "
                f"(regex used for validation is '{regex}')")])

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACE_KEY, "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace {namespace} because it is being terminated",
                           {"name": namespace, "kind": "namespaces", "causes": [{"reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated", "field": "metadata.namespace"}]})

    def _check_owner_open(self, rt: ResourceType) -> None:
        if not rt.custom:
            return
        crd = self.store.get(CRD_KEY, "", f"{rt.plural}.{rt.group}")
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            raise ApiError(405, "MethodNotAllowed", "create not allowed while custom resource definition is terminating", {})

    def _carry_metadata(self, rt: ResourceType, current: Obj, meta: Obj) -> Obj:
        old = current["metadata"]
        meta = {k: v for k, v in meta.items() if k not in (*_SERVER_METADATA, "managedFields", "selfLink")}
        meta.update({k: old[k] for k in _SERVER_METADATA if k in old})
        meta["name"] = old["name"]
        if "namespace" in old:
            meta["namespace"] = old["namespace"]
        meta["resourceVersion"] = old["resourceVersion"]
        if old.get("deletionTimestamp"):
            added = [f for f in meta.get("finalizers") or [] if f not in (old.get("finalizers") or [])]
            if added:
                listed = ", ".join(f'"{f}"' for f in added)
                raise invalid(rt.kind, rt.group, old["name"], [Cause("metadata.finalizers", "FieldValueForbidden",
                    f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{listed}}}")])
        return meta

    def _admit(self, rt: ResourceType, version: str, obj: Obj, old: Obj | None, strict: bool) -> list[str]:
        """Defaulting, pruning and validation; returns warnings for pruned unknown fields."""
        if rt.key == ("", "secrets"):
            string_data = obj.pop("stringData", None) or {}
            data = obj.setdefault("data", {}) or {}
            data.update({k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()})
            obj["data"] = data
            obj["type"] = obj.get("type") or "Opaque"
        if rt.key == NAMESPACE_KEY:
            obj.setdefault("status", {}).setdefault("phase", "Active")
        if rt.key == CRD_KEY:
            causes = validate_crd(obj) or schemas.check_crd_schemas(obj)
            if causes:
                raise invalid(rt.kind, rt.group, obj["metadata"]["name"], causes)
            if old is not None and (obj["spec"]["group"], obj["spec"]["names"]["plural"]) != (old["spec"]["group"], old["spec"]["names"]["plural"]):
                raise invalid(rt.kind, rt.group, obj["metadata"]["name"],
                              [Cause("spec.names.plural", "FieldValueInvalid", "Invalid value: field is immutable")])
            names = obj["spec"]["names"]
            obj["status"] = {
                "conditions": [
                    {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": now()}
                    for t, r, m in (("NamesAccepted", "NoConflicts", "no conflicts found"),
                                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"))
                ],
                "acceptedNames": {"singular": names.get("singular") or names["kind"].lower(), "listKind": f"{names['kind']}List", **names},
                "storedVersions": [v["name"] for v in obj["spec"]["versions"] if v.get("storage")],
            }
            if old is not None:
                obj["status"]["conditions"] = old.get("status", {}).get("conditions", obj["status"]["conditions"])
        if not rt.custom:
            return []
        schema = rt.schema(version)
        if not schema:
            return []
        unknown = schemas.prune(schema, obj)
        if unknown and strict:
            raise bad_request(f"{rt.kind} in version \"{version}\" cannot be handled as a {rt.kind}: strict decoding error: "
                              + ", ".join(f'unknown field "{p}"' for p in unknown))
        schemas.apply_defaults(schema, obj)
        causes = schemas.validate(schema, obj, old)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"]["name"], causes)
        return [f'unknown field "{p}"' for p in unknown]
