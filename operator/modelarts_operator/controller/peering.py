"""Leader election between replicas, on Kopf's peering (manifests/peering.yaml).

Kopf pauses every operator that sees a live peer of higher priority in the peering object; equal
priorities pause them all. Each replica takes its priority from its start time, older first: a new
replica (a rolling update, a second pod) waits, and takes over only when the leader stops (its
record is removed at once) or dies (its record expires after the peering lifetime).
"""

from __future__ import annotations

import logging
import time

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"
GLOB_CHARACTERS = set("*?[]!,")


class PeeringNotInstalled(RuntimeError):
    """The peering CRDs are missing: Kopf would pause for ever without saying why clearly."""


def start_priority(now: float | None = None) -> int:
    """Older replicas win: minus the start time in microseconds (two starts in one microsecond are
    unlikely; equal priorities would pause both until one goes, never run both)."""
    return -int((time.time() if now is None else now) * 1_000_000)


def peering_objects(name: str, namespaces: list[str], clusterwide: bool) -> list[tuple[str | None, str]]:
    """(namespace or None for cluster-wide, name) of the peering objects this scope needs. Namespace
    patterns (globs, lists) are skipped: their objects are the user's to create."""
    if clusterwide:
        return [(None, name)]
    return [(ns, name) for ns in namespaces if not GLOB_CHARACTERS & set(ns)]


def ensure_peering(api: client.CustomObjectsApi, name: str, namespaces: list[str], clusterwide: bool) -> list[str]:
    """Create the missing peering objects; returns those created. Raises PeeringNotInstalled
    when the CRDs are not there."""
    created = []
    for namespace, object_name in peering_objects(name, namespaces, clusterwide):
        kind = "KopfPeering" if namespace else "ClusterKopfPeering"
        body = {"apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}", "kind": kind, "metadata": {"name": object_name}}
        try:
            if namespace:
                api.create_namespaced_custom_object(PEERING_GROUP, PEERING_VERSION, namespace, "kopfpeerings", body)
            else:
                api.create_cluster_custom_object(PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", body)
        except ApiException as exc:
            if exc.status == 409:
                continue
            if exc.status == 404 and '"kind":"namespaces"' not in (exc.body or "").replace(" ", ""):
                raise PeeringNotInstalled(
                    "Kopf's peering CRDs are not installed: kubectl apply -f manifests/peering.yaml, "
                    "or run one replica with --standalone") from None
            log.warning("could not create %s %s%s: %s %s", kind, f"{namespace}/" if namespace else "",
                        object_name, exc.status, exc.reason)
            continue
        created.append(f"{kind} {namespace + '/' if namespace else ''}{object_name}")
    return created
