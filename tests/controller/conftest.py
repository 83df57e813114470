"""One stack per test module: an in-process LocalCloud and LocalKube, the CRDs, a namespace with the
credentials Secret, and the operator's Context and Runner over them (see harness.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import kubernetes
import pytest
import yaml
from controller.harness import SECRET, Stack
from kubernetes import client

from modelarts_operator import data
from modelarts_operator.local.kube.server import LocalKube
from support import local_cloud  # noqa: F401 - a fixture: the module's LocalCloud


def apply_crds(api_client: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted(data.crds().glob("*.yaml")):  # what the operator ships, as kubectl apply -k crds/
        document = yaml.safe_load(path.read_text())
        if document.get("kind") != "CustomResourceDefinition":
            continue  # kustomization.yaml
        extensions.create_custom_resource_definition(document)
        names.append(document["metadata"]["name"])
    deadline = time.monotonic() + 30
    for name in names:
        while not any(c.type == "Established" and c.status == "True"
                      for c in extensions.read_custom_resource_definition(name).status.conditions or []):
            assert time.monotonic() < deadline, f"CRD {name} not Established"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory, local_cloud) -> Iterator[Stack]:  # noqa: F811 - the fixture imported above
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    folder = tmp_path_factory.mktemp(f"controller-{module}")
    cloud = local_cloud
    with LocalKube(kubeconfig=folder / "kubeconfig") as kube:
        api_client = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig))
        try:
            apply_crds(api_client)
            namespace = f"ctl-{module}"
            core = client.CoreV1Api(api_client)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
            core.create_namespaced_secret(namespace, client.V1Secret(
                metadata=client.V1ObjectMeta(name=SECRET), string_data=cloud.credentials()))
            yield Stack(cloud, api_client, folder / "work", namespace)
        finally:
            api_client.close()


@pytest.fixture(autouse=True)
def no_faults(request):
    """Faults a scenario injects end with it."""
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").cloud.set_faults(None)
