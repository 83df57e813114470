"""The REST semantics of the API: what create, update, patch and delete do to objects.

HTTP parsing lives in `server.py`; storage and watch events in `store.py`. This module owns the
rules: server-set metadata, generation, the status subresource, finalizers and deletionTimestamp,
validation of custom resources, and CRDs registering their resources.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from . import schema as schemas
from .discovery import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType, resource_type_from_crd, validate_crd
from .errors import ApiError, Cause, already_exists, bad_request, conflict, invalid, not_found, qualified
from .objectmeta import metadata_causes
from .patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, json_patch, merge_patch, strategic_merge_patch
from .selectors import Predicate
from .store import Expired, Obj, Store

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the real server's generateName alphabet
# Fields the server owns: clients cannot set or change them.
_SERVER_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")  # the NamespaceLifecycle admission plugin's
NAMESPACE_FINALIZER = "kubernetes"  # spec.finalizers: the namespace controller's, here the emulator's own
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"  # added on delete; removed once the objects are gone
# The conditions the namespace controller sets on a terminating namespace: type, and the reason and
# message when all is well (pkg/controller/namespace/deletion/status_condition_utils.go).
NAMESPACE_CONDITIONS = (
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
    ("NamespaceDeletionContentFailure", "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
)


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


def _storage_key(obj: Obj, namespace: str | None) -> str:
    """An object's key below its resource's list, as continue tokens name it: /name in one
    namespace or for cluster-scoped objects, /namespace/name across namespaces."""
    meta = obj["metadata"]
    return f"/{meta['name']}" if namespace is not None or not meta.get("namespace") else f"/{meta['namespace']}/{meta['name']}"


def _encode_continue(key: str, rv: int) -> str:
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": key + "\x00"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[str, int]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(state["start"]).rstrip("\x00"), int(state["rv"])
    except (ValueError, KeyError, TypeError) as error:
        raise bad_request(f"invalid continue token: continue key is not valid: {error}") from None


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "bool", type(None): "null"}.get(type(value), "number")


def check_patch_type(rt: ResourceType, content_type: str) -> None:
    """415 before anything else, as the real server: strategic merge only for built-in types."""
    if content_type in (MERGE_PATCH, JSON_PATCH):
        return
    if content_type == STRATEGIC_PATCH and not rt.custom and rt.key != CRD_KEY:
        return
    if content_type == STRATEGIC_PATCH or content_type == "application/apply-patch+yaml":
        accepted = [JSON_PATCH, MERGE_PATCH] + ([] if rt.custom or rt.key == CRD_KEY else [STRATEGIC_PATCH])
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}")
    raise ApiError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})


def _check_base64(rt: ResourceType, version: str, obj: Obj) -> None:
    """Secret data and ConfigMap binaryData are base64, decoded by the server: bad data is a 400."""
    field = "data" if rt.key == ("", "secrets") else "binaryData"
    for value in (obj.get(field) or {}).values():
        if not isinstance(value, str):
            continue
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            position = next((i for i, c in enumerate(value) if not (c.isalnum() or c in "+/=")), len(value) // 4 * 4)
            raise bad_request(f'{rt.kind} in version "{version}" cannot be handled as a {rt.kind}: '
                              f"illegal base64 data at input byte {position}") from None


def _check_core_event(obj: Obj) -> None:
    """A core event about a namespaced object lives in that object's namespace."""
    involved = obj.get("involvedObject") or {}
    namespace = obj["metadata"].get("namespace", "")
    if involved.get("namespace") and involved["namespace"] != namespace:
        raise invalid("Event", "", obj["metadata"].get("name", ""), [Cause(
            "involvedObject.namespace", "FieldValueInvalid", f'Invalid value: "{involved["namespace"]}": does not match event.namespace')])
    for field, default in (("reportingComponent", ""), ("reportingInstance", ""), ("source", {}), ("eventTime", None),
                           ("firstTimestamp", None), ("lastTimestamp", None)):
        obj.setdefault(field, default)


def _default_crd(crd: Obj) -> None:
    """The API server's defaults for a CustomResourceDefinition."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", f"{names['kind']}List")
    spec.setdefault("conversion", {"strategy": "None"})


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

    def list_page(self, rt: ResourceType, namespace: str | None, accepts: Predicate, filtered: bool,
                  limit: int = 0, token: str = "", resource_version: str = "", match: str = "") -> tuple[list[Obj], dict[str, Any]]:
        """A list as the real server pages it: `limit` objects in storage-key order, a continue token
        that lists the rest as of the first page's resourceVersion, and remainingItemCount when no
        selector filters the list. `resourceVersion` with `resourceVersionMatch=Exact` (or with a
        limit) lists the objects as they were then."""
        start, at = "", None
        if token:
            start, at = _decode_continue(token)
        elif resource_version not in ("", "0"):
            try:
                wanted = int(resource_version)
            except ValueError:
                raise bad_request(f'resourceVersion: Invalid value: "{resource_version}": strconv.ParseUint: parsing '
                                  f'"{resource_version}": invalid syntax') from None
            if wanted > self.store.rv:
                raise ApiError(504, "Timeout", f"Timeout: Too large resource version: {wanted}, current: {self.store.rv}",
                               {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                "retryAfterSeconds": 1})
            if match == "Exact" or (limit and match != "NotOlderThan"):
                at = wanted
        rv = at if at is not None else self.store.rv
        try:
            objects = list(self.store.items(rt.key, namespace, rv))
        except Expired:
            if token:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list "
                               "result. You can start a new list without the continue parameter.", {}) from None
            raise ApiError(410, "Expired", f"Timeout: Too old resource version: {rv} ({self.store.floor})", {}) from None
        keyed = [(_storage_key(obj, namespace), obj) for obj in objects]
        matching = [(key, obj) for key, obj in keyed if key > start and accepts(obj)]
        page = matching[:limit] if limit > 0 else matching
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit > 0 and len(matching) > limit:
            meta["continue"] = _encode_continue(page[-1][0], rv)
            if not filtered:
                meta["remainingItemCount"] = len(matching) - limit
        return [obj for _, obj in page], meta

    # -- create ----------------------------------------------------------------------------

    def create(self, rt: ResourceType, version: str, namespace: str, body: Any,
               dry_run: bool = False, strict: bool = False) -> tuple[Obj, list[str]]:
        obj = self._check_body(rt, version, body)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
            self._check_namespace_open(rt, namespace, meta.get("name") or "")
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(rt.kind, rt.group, "", [Cause("metadata.name", "FieldValueRequired",
                                                             "Required value: name or generateName is required")])
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
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
            cause = Cause("metadata.resourceVersion", "FieldValueInvalid", "Invalid value: 0: must be specified for an update")
            raise invalid(rt.plural, rt.group, name, [cause])  # named by its resource here, not its kind
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
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers") and not self._owns_content(rt):
            # The update that empties the finalizers of an object being deleted is not stored: the
            # object is deleted as it last was (its DELETED event still lists the finalizers).
            self._remove(rt, current)
            return present(rt, version, obj), warnings  # the answer is the object as updated
        stored = self.store.put(rt.key, obj, "MODIFIED")
        if stored["metadata"].get("deletionTimestamp") and self._owns_content(rt):
            stored = self._finish_if_empty(rt, name) or stored
        elif stored["metadata"].get("deletionTimestamp") and rt.namespaced:
            self._finish_if_empty(self.registry.types[NAMESPACE_KEY], namespace)  # its finalizers are counted there
        if rt.key == CRD_KEY:
            self.registry.register(resource_type_from_crd(stored))
        return present(rt, version, stored), warnings

    def patch(self, rt: ResourceType, version: str, namespace: str, name: str, content_type: str, patch: Any,
              subresource: str | None = None, dry_run: bool = False, strict: bool = False) -> tuple[Obj, list[str]]:
        check_patch_type(rt, content_type)
        current = present(rt, version, self.get(rt, namespace, name))
        if content_type == MERGE_PATCH:
            if not isinstance(patch, dict):
                raise bad_request(f"error decoding patch: json: cannot unmarshal {_json_type(patch)} into Go value of type map[string]interface {{}}")
            patched = merge_patch(current, patch)
        elif content_type == JSON_PATCH:
            patched = json_patch(current, patch)
        else:
            if not isinstance(patch, dict):
                raise bad_request(f"error decoding patch: json: cannot unmarshal {_json_type(patch)} into Go value of type map[string]interface {{}}")
            patched = strategic_merge_patch(current, patch)
        return self.update(rt, version, namespace, name, patched, subresource, dry_run, strict, require_version=False)

    # -- delete ----------------------------------------------------------------------------

    def delete(self, rt: ResourceType, version: str, namespace: str, name: str,
               preconditions: dict[str, Any] | None = None, dry_run: bool = False, status_if_gone: bool = True) -> Obj:
        """The object, still there with a deletionTimestamp, or a Success Status once it is gone
        (as the real registries answer; `status_if_gone=False` gives the object, for deletecollection)."""
        current = self.get(rt, namespace, name)
        if rt.key == NAMESPACE_KEY and name in IMMORTAL_NAMESPACES:
            raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                           {"name": name, "kind": "namespaces"})
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and wanted != current["metadata"].get(key):
                raise ApiError(409, "Conflict", f"Precondition failed: {key} in precondition: {wanted}, "
                                                f"{key} in object meta: {current['metadata'].get(key)}",
                               {"name": name, "kind": rt.plural, **({"group": rt.group} if rt.group else {})})
        if dry_run:
            return present(rt, version, current)
        result = present(rt, version, self._delete(rt, current))
        if not status_if_gone or self.store.get(rt.key, namespace, name) is not None:
            return result
        details = {"name": name, **({"group": rt.group} if rt.group else {}), "kind": rt.plural, "uid": current["metadata"]["uid"]}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _delete(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        owns_content = self._owns_content(rt)
        if not meta.get("finalizers") and not owns_content:
            return self._remove(rt, obj)
        if meta.get("deletionTimestamp"):
            return obj
        meta["deletionTimestamp"] = now()
        if rt.key == NAMESPACE_KEY:
            obj.setdefault("status", {})["phase"] = "Terminating"
        elif rt.key == CRD_KEY:
            meta["finalizers"] = [*(meta.get("finalizers") or []), CRD_FINALIZER]
        else:
            # What the generic registry does (markAsDeleting): no grace, and a new generation, since
            # a controller must now stop acting on the object.
            meta["deletionGracePeriodSeconds"] = 0
            if meta.get("generation"):
                meta["generation"] += 1
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

    @staticmethod
    def _owns_content(rt: ResourceType) -> bool:
        return rt.key in (NAMESPACE_KEY, CRD_KEY)

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
        if owner is None or not owner["metadata"].get("deletionTimestamp"):
            return None
        contents = self._contents(rt, owner)
        if rt.key == NAMESPACE_KEY:
            owner = self._report_contents(owner, contents)
        if contents:
            return None
        # Emptied: the emulator's own finalizer goes (as the namespace controller or the CRD
        # cleanup would remove it), then the owner itself once nobody else holds it.
        meta, spec = owner["metadata"], owner.get("spec") or {}
        if rt.key == NAMESPACE_KEY and NAMESPACE_FINALIZER in (spec.get("finalizers") or []):
            spec["finalizers"] = [f for f in spec["finalizers"] if f != NAMESPACE_FINALIZER]
            if not spec["finalizers"]:
                del spec["finalizers"]  # the real server then shows `spec: {}`
            owner = self.store.put(rt.key, owner, "MODIFIED")
        elif rt.key == CRD_KEY and CRD_FINALIZER in (meta.get("finalizers") or []):
            meta["finalizers"] = [f for f in meta["finalizers"] if f != CRD_FINALIZER]
            if not meta["finalizers"]:
                del meta["finalizers"]
            owner = self.store.put(rt.key, owner, "MODIFIED")
        if owner["metadata"].get("finalizers") or (owner.get("spec") or {}).get("finalizers"):
            return owner
        return self._remove(rt, owner)

    def _report_contents(self, namespace: Obj, contents: list[tuple[ResourceType, Obj]]) -> Obj:
        """The namespace controller's status conditions on a terminating namespace: what content and
        which finalizers remain (Kopf reads them), or the five "all done" conditions once empty.
        A condition's lastTransitionTime moves only when its status does."""
        remaining = Counter(f"{content_rt.plural}.{content_rt.group}" for content_rt, _ in contents)
        finalizers = Counter(f for _, item in contents for f in item["metadata"].get("finalizers") or [])
        problems = {}
        if remaining:
            problems["NamespaceContentRemaining"] = ("SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                sorted(f"{resource} has {count} resource instances" for resource, count in remaining.items())))
        if finalizers:
            problems["NamespaceFinalizersRemaining"] = (
                "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: " + ", ".join(
                    sorted(f"{finalizer} in {count} resource instances" for finalizer, count in finalizers.items())))
        status = namespace.setdefault("status", {})
        before = {c.get("type"): c for c in status.get("conditions") or []}
        conditions = []
        for type_, ok_reason, ok_message in NAMESPACE_CONDITIONS:
            state, reason, message = ("True", *problems[type_]) if type_ in problems else ("False", ok_reason, ok_message)
            old = before.get(type_)
            since = old["lastTransitionTime"] if old and old.get("status") == state else now()
            conditions.append({"type": type_, "status": state, "lastTransitionTime": since, "reason": reason, "message": message})
        if [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions] == \
                [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []]:
            return namespace
        status["conditions"] = conditions
        return self.store.put(NAMESPACE_KEY, namespace, "MODIFIED")

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

    def _check_namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get(NAMESPACE_KEY, "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            resource = qualified(rt.plural, rt.group)
            subject = f'{resource} "{name}"' if name else resource
            details = {"name": name, **({"group": rt.group} if rt.group else {}), "kind": rt.plural,
                       "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                                   "field": "metadata.namespace"}]}
            raise ApiError(403, "Forbidden", f"{subject} is forbidden: unable to create new content in namespace "
                                             f"{namespace} because it is being terminated", details)

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
        if rt.key in (("", "secrets"), ("", "configmaps")):
            _check_base64(rt, version, obj)
        if rt.key == ("", "events"):
            _check_core_event(obj)
        if rt.key == ("", "secrets"):
            string_data = obj.pop("stringData", None) or {}
            data = obj.setdefault("data", {}) or {}
            data.update({k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()})
            obj["data"] = data
            obj["type"] = obj.get("type") or "Opaque"
        if rt.key == NAMESPACE_KEY:
            if old is None:
                obj["status"] = {"phase": "Active"}  # whatever the body says, as the namespace strategy
            # The label every namespace carries (for namespaceSelectors), and the namespace
            # controller's finalizer, which the emulator clears itself once the namespace is empty.
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            if old is None:
                spec = obj.get("spec") or {}
                spec["finalizers"] = list(dict.fromkeys([*(spec.get("finalizers") or []), NAMESPACE_FINALIZER]))
                obj["spec"] = spec
            else:
                obj["spec"] = old.get("spec") or {}  # spec.finalizers change only through /finalize
        # Name (on create), labels and annotations, listed before the kind's own errors in one 422.
        causes = metadata_causes(obj["metadata"], old is None, dns_label=rt.key == NAMESPACE_KEY)
        if rt.key == CRD_KEY:
            _default_crd(obj)
            causes += validate_crd(obj) or schemas.check_crd_schemas(obj)
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
        if not rt.custom or not rt.schema(version):
            if causes:
                raise invalid(rt.kind, rt.group, obj["metadata"]["name"], causes)
            return []
        schema = rt.schema(version)
        unknown = schemas.prune(schema, obj)
        if unknown and strict:
            raise bad_request(f"{rt.kind} in version \"{version}\" cannot be handled as a {rt.kind}: strict decoding error: "
                              + ", ".join(f'unknown field "{p}"' for p in unknown))
        schemas.apply_defaults(schema, obj)
        causes += schemas.validate(schema, obj, old)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"]["name"], causes)
        for key in [k for k in obj if k != "metadata"]:
            obj[key] = schemas.whole_numbers(obj[key])
        return [f'unknown field "{p}"' for p in unknown]
