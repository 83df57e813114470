"""`make demo`: the MNIST tutorial through the operator on the local stack, from apply to clean-up."""

from __future__ import annotations

import io
import json
import random
import sys
import time
from pathlib import Path

from modelarts_operator import mnist
from modelarts_operator.api.conditions import TERMINAL_REASONS, find_condition
from modelarts_operator.api.kinds import KINDS
from modelarts_operator.cloud import CloudCredentials, ModelArtsApi, ObsStore, ObsUrl
from modelarts_operator.cloud.errors import CloudError
from modelarts_operator.cloud.predict import predict
from modelarts_operator.local import PROJECT_ROOT as ROOT
from modelarts_operator.local.stack import Stack, StackError

SAMPLES = ROOT / "manifests" / "overlays" / "local-stack"
ORDER = tuple(kind.kind for kind in KINDS)  # in dependency order
# How long each resource may take to become Ready once the kinds before it are, in seconds: generous
# for a loaded 2-core machine (idle: seconds, then about 30 s of training, 10 s to deploy).
STAGE_TIMEOUTS = {"MnistDataset": 180, "ModelArtsAlgorithm": 120, "TrainingJob": 900, "ModelArtsService": 300}
DELETE_TIMEOUT = 300


def resources(stack: Stack) -> list[dict]:
    items = json.loads(stack.kubectl("get", "modelarts", "-n", stack.namespace, "-o", "json"))["items"]
    return sorted(items, key=lambda o: ORDER.index(o["kind"]) if o["kind"] in ORDER else 9)


def ready_condition(obj: dict) -> dict:
    return find_condition(obj.get("status"), "Ready")


def progress_line(items: list[dict], elapsed: float) -> str:
    parts = []
    for obj in items:
        cond, status = ready_condition(obj), obj.get("status") or {}
        state = "Ready" if cond.get("status") == "True" else cond.get("reason", "Pending")
        detail = status.get("phase") if obj["kind"] == "TrainingJob" and state not in ("Ready", status.get("phase")) else None
        parts.append(f"{obj['metadata']['name']}: {state}{f' ({detail})' if detail else ''}")
    return f"[{elapsed:5.0f}s] " + " | ".join(parts)


def ready(obj: dict | None) -> bool:
    return obj is not None and ready_condition(obj).get("status") == "True"


def wait_until_ready(stack: Stack, timeouts: dict[str, float] = STAGE_TIMEOUTS) -> list[dict]:
    """Print a progress line on every change until all four are Ready; fail fast on a terminal reason, a
    dead component, or a stage that overruns its bound (its clock starts when the kinds before it are Ready)."""
    started = stage_started = time.monotonic()
    stage, last = 0, ""
    while True:
        stack.assert_alive()  # a dead operator or emulator is said at once, not after the timeout
        items = resources(stack)
        now = time.monotonic()
        line = progress_line(items, now - started)
        if line.split("] ", 1)[1] != last:
            print(line, flush=True)
            last = line.split("] ", 1)[1]
        if len(items) == len(ORDER) and all(ready(o) for o in items):
            return items
        for obj in items:
            cond = ready_condition(obj)
            if cond.get("status") == "False" and cond.get("reason") in TERMINAL_REASONS:
                raise StackError(f"{obj['kind']} {obj['metadata']['name']}: {cond['reason']}: {cond.get('message')}; "
                                 f"look at kubectl describe {obj['kind'].lower()} {obj['metadata']['name']} "
                                 f"-n {stack.namespace}, and {stack.log('operator')}")
        by_kind = {o["kind"]: o for o in items}
        while stage < len(ORDER) and ready(by_kind.get(ORDER[stage])):
            stage, stage_started = stage + 1, now
        kind = ORDER[stage]
        if now - stage_started > timeouts[kind]:
            obj = by_kind.get(kind)
            name = obj["metadata"]["name"] if obj else "(none)"
            cond = ready_condition(obj) if obj else {}
            since = f"after {ORDER[stage - 1]} was Ready" if stage else "after they were applied"
            raise StackError(f"{kind} {name} not Ready {timeouts[kind]:.0f} s {since} "
                             f"({cond.get('reason', 'no status')}: {cond.get('message', '')}); look at kubectl describe "
                             f"{kind.lower()} {name} -n {stack.namespace}, {stack.log('operator')} and "
                             f"{stack.log('cloud')}")
        time.sleep(2)


def wait_until_deleted(stack: Stack, timeout: float) -> None:
    """Until the four are gone (their finalizers have deleted the cloud side), with progress lines."""
    started, last = time.monotonic(), ""
    while items := resources(stack):
        stack.assert_alive()
        left = ", ".join(f"{o['kind']} {o['metadata']['name']}" for o in items)
        if left != last:
            print(f"[{time.monotonic() - started:5.0f}s] finalizing: {left}", flush=True)
            last = left
        if time.monotonic() - started > timeout:
            raise StackError(f"still there {timeout:.0f} s after the delete: {last}; a finalizer says why in "
                             f"kubectl get events -n {stack.namespace}; see {stack.log('operator')}")
        time.sleep(2)


def test_image(folder: Path, index: int) -> tuple[bytes, int]:
    from PIL import Image

    files = mnist.fetch_mnist(folder / "mnist", zip_urls=(), mirror_urls=())
    pixels = mnist.read_idx(files["t10k-images-idx3-ubyte"]).to_numpy()[index]
    label = int(mnist.read_idx(files["t10k-labels-idx1-ubyte"]).to_numpy()[index])
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), label


def cloud_inventory(cloud: dict) -> dict[str, int]:
    """What is left in the local cloud: every ModelArts resource and every object in the demo bucket."""
    creds = CloudCredentials.from_mapping(cloud)
    api, obs = ModelArtsApi(lambda: creds), ObsStore(lambda: creds)
    bucket = ObsUrl("test-modelarts", "")
    return {
        "algorithms": api.count("algorithms"),
        "training jobs": api.count("training_jobs"),
        "models": api.count("models"),
        "services": api.count("services"),
        "OBS objects in test-modelarts": sum(1 for _ in obs.list(bucket)) if obs.bucket_exists(bucket.bucket) else 0,
    }


def run(folder: Path = Path(".local"), keep: bool = False, image_index: int | None = None, kube: str = "auto") -> int:
    stack = Stack(folder=folder, kube=kube)
    started = time.monotonic()
    try:
        print("== 1. starting the local stack: local cloud, local Kubernetes API (unless a cluster is reachable), "
              "operator", flush=True)
        cloud = stack.up()
        print(f"   ModelArts {cloud['modelartsEndpoint']}, OBS {cloud['obsEndpoint']}, KUBECONFIG={stack.kubeconfig}")
        print(f"== 2. kubectl apply -k {SAMPLES.relative_to(ROOT)} -n {stack.namespace}", flush=True)
        print(stack.kubectl("apply", "-k", str(SAMPLES), "-n", stack.namespace).rstrip())
        print("== 3. waiting for the four resources to be Ready (the job trains on a 10k subset)", flush=True)
        items = wait_until_ready(stack)
        print(f"== 4. kubectl get modelarts -n {stack.namespace}")
        print(stack.kubectl("get", "modelarts", "-n", stack.namespace).rstrip())
        endpoint = next(o for o in items if o["kind"] == "ModelArtsService")["status"]["endpoint"]
        index = random.randrange(10000) if image_index is None else image_index
        image, label = test_image(folder, index)
        print(f"== 5. POST {endpoint} with MNIST test image #{index}", flush=True)
        try:  # bounded: 40 s per attempt, no new attempt after 10 s
            answer = predict(endpoint, image, f"mnist-test-{index}.png", token=cloud["authToken"])
        except CloudError as exc:
            stack.assert_alive()
            raise StackError(f"predict: {exc}; the service runs under the local cloud: {stack.log_tail('cloud')}") from None
        print(f"   predicted digit: {answer['predicted_label']}   true digit: {label}   "
              f"top scores: {answer['scores'][:3]}")
        if keep:
            print_next_steps(stack, endpoint)
            return 0
        print(f"== 6. kubectl delete -k {SAMPLES.relative_to(ROOT)} -n {stack.namespace} (finalizers delete the "
              "cloud side)", flush=True)
        print(stack.kubectl("delete", "-k", str(SAMPLES), "-n", stack.namespace, "--wait=false").rstrip())
        wait_until_deleted(stack, DELETE_TIMEOUT)
        left = cloud_inventory(cloud)
        print("   left in the cloud: " + ", ".join(f"{name} {count}" for name, count in left.items()))
        print(f"== done in {time.monotonic() - started:.0f}s", flush=True)
        return 0 if not any(left.values()) else 1
    except StackError as exc:
        print(f"demo failed: {exc}", flush=True)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted", flush=True)
        return 130
    finally:  # also on SIGTERM (cli.py makes it raise SystemExit)
        if not keep:
            print("== 7. stopping the local stack", flush=True)
            stack.down()


def print_next_steps(stack: Stack, endpoint: str) -> None:
    print(f"""
== KEEP=1: everything keeps running. Try:
   export KUBECONFIG={stack.kubeconfig.resolve()}
   kubectl get modelarts -n {stack.namespace} -o wide
   PATH="{Path(sys.executable).parent}:$PATH" kubectl modelarts status -n {stack.namespace}   # also: predict, logs -f
   kubectl describe trainingjob mnist-train -n {stack.namespace}
   kubectl get events -n {stack.namespace}
   TOKEN=$(python -c 'import json; print(json.load(open("{stack.cloud_file}"))["authToken"])')
   curl -H "X-Auth-Token: $TOKEN" -F images=@digit.png {endpoint}
   kubectl patch modelartsservice mnist-service -n {stack.namespace} --type merge -p '{{"spec":{{"instanceCount":2}}}}'
   kubectl delete -k {SAMPLES.relative_to(ROOT)} -n {stack.namespace}     # clean up the cloud side
   .venv/bin/modelarts-operator local down --folder {stack.folder}        # stop the stack
   logs: {stack.folder}/logs/""")
