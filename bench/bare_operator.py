"""The baseline of bench/idle.py: a bare Kopf operator watching the same four kinds in one namespace.

    python bench/bare_operator.py --namespace NS

Per object it does the least a Kopf operator with a daemon per object does: one create handler marks
the object Ready (one status patch, so "apply -> all Ready" is measured the same way as for ours),
and one daemon sleeps until the object goes. Settings as ours where they change the request count:
Kopf's own events off, progress and diff-base in annotations, Kopf's own kubeconfig login (no
`kubernetes` client imported). It imports nothing but Kopf, so its RSS is Kopf's.
"""

from __future__ import annotations

import argparse
import datetime
import logging

import kopf

GROUP, VERSION = "modelarts.mlops.dev", "v1alpha1"
PLURALS = ("mnistdatasets", "modelartsalgorithms", "trainingjobs", "modelartsservices")


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_):
        settings.posting.level = logging.WARNING
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="bare.bench")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="bare.bench")

    @kopf.on.login(registry=registry)
    def login(**kwargs):
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    for plural in PLURALS:
        @kopf.on.create(GROUP, VERSION, plural, registry=registry, id="ready")
        def ready(patch: kopf.Patch, **_):
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            patch.status["conditions"] = [{"type": "Ready", "status": "True", "reason": "Seen", "message": "",
                                           "lastTransitionTime": now}]

        @kopf.daemon(GROUP, VERSION, plural, registry=registry, id="idle", cancellation_timeout=5.0)
        async def idle(stopped: kopf.DaemonStopped, **_):
            await stopped.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()
    kopf.configure(verbose=False, log_format=kopf.LogFormat.PLAIN)
    registry = kopf.OperatorRegistry()
    register(registry)
    kopf.run(registry=registry, namespaces=[args.namespace], standalone=True)


if __name__ == "__main__":
    main()
