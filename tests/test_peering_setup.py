"""How a replica joins the peering (controller/peering.py): its priority, and the peering objects it
creates when missing, against the Kubernetes API emulator with the real client and kubectl. Two
replicas taking over from each other: tests/operator/test_peering.py (both backends)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import kubernetes
import pytest

from modelarts_operator.controller.peering import (
    PeeringNotInstalled,
    ensure_peering,
    peering_objects,
    start_priority,
)
from modelarts_operator.local.kube.server import LocalKube

ROOT = Path(__file__).resolve().parents[1]


def test_older_replicas_have_higher_priority():
    assert start_priority(1000.0) > start_priority(1000.000001) > start_priority(2000.0)


def test_peering_objects_of_a_scope():
    assert peering_objects("p", [], clusterwide=True) == [(None, "p")]
    assert peering_objects("p", ["team-a", "team-*", "!x", "a,b"], clusterwide=False) == [("team-a", "p")]


@pytest.fixture
def api(tmp_path):
    with LocalKube(kubeconfig=tmp_path / "kubeconfig") as kube:
        client = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig))
        env = dict(os.environ, KUBECONFIG=str(kube.kubeconfig))
        yield kubernetes.client.CustomObjectsApi(client), env
        client.close()


def test_missing_crds_are_named_with_the_fix(api):
    custom, _ = api
    with pytest.raises(PeeringNotInstalled, match="manifests/peering.yaml"):
        ensure_peering(custom, "modelarts-operator", ["default"], clusterwide=False)
    with pytest.raises(PeeringNotInstalled, match="--standalone"):
        ensure_peering(custom, "modelarts-operator", [], clusterwide=True)


def test_peering_objects_are_created_once(api, caplog):
    custom, env = api
    subprocess.run(["kubectl", "apply", "-f", str(ROOT / "manifests" / "peering.yaml")], env=env, check=True,
                   capture_output=True)
    subprocess.run(["kubectl", "create", "namespace", "team-a"], env=env, check=True, capture_output=True)
    assert ensure_peering(custom, "op", ["team-a"], clusterwide=False) == ["KopfPeering team-a/op"]
    assert ensure_peering(custom, "op", ["team-a"], clusterwide=False) == []  # exists: left as it is
    assert ensure_peering(custom, "op", [], clusterwide=True) == ["ClusterKopfPeering op"]
    assert custom.get_namespaced_custom_object("kopf.dev", "v1", "team-a", "kopfpeerings", "op")
    with caplog.at_level(logging.WARNING):  # a namespace that does not exist (yet) is no reason to stop
        assert ensure_peering(custom, "op", ["nowhere"], clusterwide=False) == []
    assert "could not create KopfPeering nowhere/op: 404" in caplog.text
