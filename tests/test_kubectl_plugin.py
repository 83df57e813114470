"""kubectl-modelarts, its pure parts: the status tree, the formatting of answers, new log text, the
kubeconfig's contexts and namespaces, the command line. With a cluster: tests/operator/test_kubectl_plugin.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from modelarts_operator.kubectl_plugin import tree
from modelarts_operator.kubectl_plugin.errors import PluginError
from modelarts_operator.kubectl_plugin.kube import resolve_context
from modelarts_operator.kubectl_plugin.logs import unseen
from modelarts_operator.kubectl_plugin.main import parser
from modelarts_operator.kubectl_plugin.predict import Result, endpoint_of, format_answer, format_result

ENDPOINT = "http://127.0.0.1:35583/v1/infers/412330c8"


def resource(kind: str, name: str, spec: dict | None = None, ready: str | None = "True", reason: str = "Done",
             message: str = "", **status) -> dict:
    conditions = [{"type": "Ready", "status": ready, "reason": reason, "message": message}] if ready else []
    return {"kind": kind, "metadata": {"name": name}, "spec": spec or {}, "status": {"conditions": conditions, **status}}


def dataset(name="mnist", **kw):
    kw.setdefault("reason", "Uploaded")
    return resource("MnistDataset", name, obsUrl=f"obs://b/{name}/", fileCount=8, **kw)


def algorithm(name="algo", **kw):
    kw.setdefault("reason", "Created")
    return resource("ModelArtsAlgorithm", name, algorithmId="a-1", **kw)


def job(name="train", datasets=("mnist",), algo="algo", **kw):
    spec = {"algorithmRef": {"name": algo},
            "inputs": [{"name": f"in{i}", "datasetRef": {"name": d}} for i, d in enumerate(datasets)]}
    kw.setdefault("reason", "Completed")
    return resource("TrainingJob", name, spec, phase="Completed", version="V0001", metrics={"accuracy": 0.9612}, **kw)


def service(name="svc", job_name="train", **kw):
    kw.setdefault("reason", "Running")
    return resource("ModelArtsService", name, {"trainingJobRef": {"name": job_name}}, phase="running",
                    endpoint=ENDPOINT, **kw)


# --- the status tree -----------------------------------------------------------------------------


def test_the_pipeline_is_one_tree_from_the_service_down_to_dataset_and_algorithm():
    objects = [dataset(), algorithm(), job(), service()]
    assert tree.render(tree.build_trees(objects)) == "\n".join([
        f"ModelArtsService/svc  Ready=True Running  phase=running  endpoint={ENDPOINT}",
        "└── TrainingJob/train  Ready=True Completed  phase=Completed  version=V0001  accuracy=0.9612",
        "    ├── MnistDataset/mnist  Ready=True Uploaded  obsUrl=obs://b/mnist/  files=8",
        "    └── ModelArtsAlgorithm/algo  Ready=True Created  algorithmId=a-1",
    ])


def test_dangling_references_are_nodes_marked_not_found():
    objects = [job(datasets=("mnist", "gone")), service(job_name="missing-job")]
    trees = tree.build_trees(objects)
    text = tree.render(trees)
    assert [t.name for t in trees] == ["svc", "train"]
    assert "└── TrainingJob/missing-job  (not found)" in text
    assert "├── MnistDataset/mnist  (not found)" in text and "├── MnistDataset/gone  (not found)" in text
    assert "└── ModelArtsAlgorithm/algo  (not found)" in text
    assert tree.as_dict(trees[0])["children"][0] == {
        "kind": "TrainingJob", "name": "missing-job", "found": False, "ready": None, "reason": None,
        "message": None, "facts": {}, "children": []}


def test_objects_nothing_references_are_roots_of_their_own_services_first():
    objects = [algorithm("unused-algo"), dataset("spare"), dataset(), algorithm(), job(), service("b"), service("a")]
    roots = [(t.kind, t.name) for t in tree.build_trees(objects)]
    assert roots == [("ModelArtsService", "a"), ("ModelArtsService", "b"), ("ModelArtsAlgorithm", "unused-algo"),
                     ("MnistDataset", "spare")]
    shared = tree.build_trees(objects)  # the job both services use appears under each
    assert [t.children[0].name for t in shared[:2]] == ["train", "train"]


def test_rooted_at_one_service_only_its_tree():
    objects = [dataset(), algorithm(), job(), service("a"), job("other"), service("b", job_name="other")]
    (root,) = tree.build_trees(objects, ("ModelArtsService", "b"))
    assert (root.name, root.children[0].name) == ("b", "other")


def test_a_node_not_ready_shows_its_reason_and_message_below_it():
    objects = [dataset(ready="False", reason="Uploading", message="3 of 8\nfiles"),
               job(ready="False", reason="WaitingForDependency", message="dataset mnist is not Ready"),
               algorithm(ready=None)]
    assert tree.render(tree.build_trees(objects)).splitlines() == [
        "TrainingJob/train  Ready=False WaitingForDependency  phase=Completed  version=V0001  accuracy=0.9612",
        "│   dataset mnist is not Ready",
        "├── MnistDataset/mnist  Ready=False Uploading  obsUrl=obs://b/mnist/  files=8",
        "│       3 of 8 files",
        "└── ModelArtsAlgorithm/algo  Ready=Unknown -  algorithmId=a-1",
    ]


def test_a_running_job_shows_its_progress():
    running = job(ready="False", reason="Running")
    running["status"].update(phase="Running", progress="3/6")
    assert tree.facts(tree.Node("TrainingJob", "train", running))["progress"] == "3/6"
    done = job()
    done["status"]["progress"] = "6/6"
    assert "progress" not in tree.facts(tree.Node("TrainingJob", "train", done))  # Completed says it all


def test_the_json_tree_holds_state_and_facts():
    (root,) = tree.build_trees([dataset(), algorithm(), job(), service()])
    document = json.loads(json.dumps(tree.as_dict(root)))
    assert document["facts"] == {"phase": "running", "endpoint": ENDPOINT}
    assert (document["ready"], document["reason"]) == ("True", "Running")
    assert document["children"][0]["facts"]["accuracy"] == 0.9612
    assert [c["kind"] for c in document["children"][0]["children"]] == ["MnistDataset", "ModelArtsAlgorithm"]


# --- predict ---------------------------------------------------------------------------------------


ANSWER = {"predicted_label": "7", "scores": [["7", 0.998], ["2", 0.0012], ["3", 0.0001], ["1", 0.0], ["9", 0.0]]}


def test_scores_print_as_label_with_its_score_then_the_next_labels():
    assert format_answer(ANSWER) == "7 (0.998) | 2 0.001 | 3 0.000"
    assert format_answer(ANSWER, top=1) == "7 (0.998)"
    assert format_answer(ANSWER, top=5) == "7 (0.998) | 2 0.001 | 3 0.000 | 1 0.000 | 9 0.000"
    assert format_answer({"predicted_label": "4"}) == "4"
    assert format_answer({"predicted_label": "4", "scores": [["1", 0.6], ["4", 0.4]]}) == "4 (0.400) | 1 0.600"
    assert format_answer({"label": "cat"}) == '{"label":"cat"}'  # another model's answer, as it came


def test_a_result_line_names_the_image():
    assert format_result(Result("digit.png", ANSWER)) == "digit.png: 7 (0.998) | 2 0.001 | 3 0.000"
    assert format_result(Result("x.png", error="cannot read the image: No such file or directory")) == \
        "x.png: error: cannot read the image: No such file or directory"


def test_a_service_not_ready_or_without_endpoint_has_nothing_to_send_to():
    assert endpoint_of(service()) == ENDPOINT
    with pytest.raises(PluginError, match=r'"svc" is not Ready \(Deploying: 0 of 1 instances\)'):
        endpoint_of(service(ready="False", reason="Deploying", message="0 of 1 instances"))
    with pytest.raises(PluginError, match="not Ready .no Ready condition yet"):
        endpoint_of(service(ready=None))
    with pytest.raises(PluginError, match="no status.endpoint"):
        endpoint_of(resource("ModelArtsService", "svc"))


# --- logs ------------------------------------------------------------------------------------------


def test_new_log_text_when_the_preview_grows():
    assert unseen("", "epoch=1/2\n") == ("epoch=1/2\n", False)
    assert unseen("epoch=1/2\n", "epoch=1/2\nepoch=2/2\n") == ("epoch=2/2\n", False)
    assert unseen("same\n", "same\n") == ("", False)


def test_new_log_text_when_the_preview_window_slid():
    lines = [f"line {i}\n" for i in range(100)]
    before, after = "".join(lines[:60]), "".join(lines[30:80])  # the window moved by 30 lines, 20 are new
    assert unseen(before, after) == ("".join(lines[60:80]), False)


def test_repeated_lines_do_not_fool_the_slid_window():
    before = "x\n" * 300 + "end\n"
    after = "x\n" * 200 + "end\n" + "x\n" * 5
    assert unseen(before, after) == ("x\n" * 5, False)


def test_a_window_past_everything_seen_is_all_new_with_a_gap():
    assert unseen("old\n", "new 1\nnew 2\n") == ("new 1\nnew 2\n", True)


# --- kubeconfig, contexts, namespaces ------------------------------------------------------------


def kubeconfig(path, current="one", contexts=(("one", "ns-one"), ("two", None))) -> str:
    config = {"apiVersion": "v1", "kind": "Config", **({"current-context": current} if current else {}),
              "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
              "users": [{"name": "u", "user": {}}],
              "contexts": [{"name": name, "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})}}
                           for name, ns in contexts]}
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_the_namespace_is_the_contexts_else_default(tmp_path):
    config = kubeconfig(tmp_path / "config")
    assert resolve_context(config, None) == ("one", "ns-one")
    assert resolve_context(config, "two") == ("two", "default")
    with pytest.raises(PluginError, match='context "three" does not exist'):
        resolve_context(config, "three")


def test_kubeconfig_env_lists_several_files_as_kubectl_merges_them(tmp_path, monkeypatch):
    first = kubeconfig(tmp_path / "a", current="one", contexts=(("one", "ns-one"),))
    second = kubeconfig(tmp_path / "b", current=None, contexts=(("two", "ns-two"),))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([first, second]))
    assert resolve_context(None, "two") == ("two", "ns-two")
    assert resolve_context(None, None) == ("one", "ns-one")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(PluginError, match="cannot read the kubeconfig"):
        resolve_context(None, None)


# --- the command line ------------------------------------------------------------------------------


def test_kubectl_flags_go_before_or_after_the_command():
    before = parser().parse_args(["-n", "a", "--context", "c", "status"])
    after = parser().parse_args(["status", "--namespace", "b", "--kubeconfig", "k"])
    assert (before.namespace, before.context, before.kubeconfig) == ("a", "c", None)
    assert (after.namespace, after.context, after.kubeconfig) == ("b", None, "k")
    logs = parser().parse_args(["logs", "train", "-f", "-n", "x"])
    assert (logs.job, logs.follow, logs.namespace, logs.interval) == ("train", True, "x", 2.0)


def test_the_plugin_loads_neither_tensorflow_nor_the_local_stack_nor_kopf():
    code = ("import sys; import modelarts_operator.kubectl_plugin.main as m, modelarts_operator.kubectl_plugin.logs,"
            " modelarts_operator.kubectl_plugin.predict, modelarts_operator.kubectl_plugin.tree,"
            " modelarts_operator.kubectl_plugin.kube; import kubernetes.client;"
            " print([n for n in sys.modules if n.split('.')[0] in ('tensorflow', 'kopf', 'moto')"
            " or n.startswith('modelarts_operator.local')])")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
