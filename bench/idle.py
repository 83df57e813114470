"""The operator idle at scale: N stable objects, against a bare Kopf operator watching the same kinds.

    python -m bench idle                 # sizes 100, 250, 500
    python -m bench idle --sizes 100     # one size (the others keep their last results)

Per size, on a fresh stack (LocalCloud, the Kubernetes emulator and a counting OBS proxy, all in this
process; each operator in a subprocess of its own, watching a namespace of its own, both holding N
identical objects):

1. apply -> all Ready: the bare operator first (`bench/bare_operator.py`: Kopf, a create handler that
   marks Ready, a daemon that sleeps), alone; then ours at the default stable interval (300 s).
2. Both idle, measured in one window (CPU, RSS, requests): ours with no recheck due is its floor.
   Then "apply -> first cloud call" and "spec change -> Synced" of probe objects, one at a time.
3. Ours restarted with `--poll-slow S` (20 s): every daemon rechecks at once, then every S seconds.
   One window of two intervals, the bare operator measured beside it again. The requests per object
   per interval are what the defaults make per 5 minutes. Ours' CPU above its floor is all rechecks,
   which at the defaults come 300/S times less often: CPU at 300 s = floor + (measured - floor) * S/300.
   The one thing the operator does by the clock rather than per recheck, re-reading the credentials
   Secret once its 5 s cache expired, is left at 5 s: the rechecks of a restarted operator come in one
   burst per interval, as here. Spread evenly over the interval instead (objects created at different
   times), they could read the Secret up to 300/5 = 60 times per 5 minutes per namespace: that bound
   is reported beside.

The objects: N-D ModelArtsAlgorithms whose `code.obsPath` is one folder uploaded once (a stable one
costs one algorithm GET), and D MnistDatasets with one Local source (a stable one costs one OBS LIST).

Requests are counted where they arrive: a middleware added to the emulator's aiohttp app here (by
namespace, and by User-Agent: Kopf's, the `kubernetes` client's, this benchmark's), the local ModelArts' own
per-operation counters, and a reverse proxy in front of the local OBS that the operator's Secret
points at. Times come from the emulator's store: a watcher registered in-process stamps every write.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from yarl import URL

from bench.common import ROOT, percentiles
from modelarts_operator import data
from modelarts_operator.cloud import CloudCredentials, ObsStore, ObsUrl
from modelarts_operator.local.cloud import LocalCloud
from modelarts_operator.local.kube.server import KubeServer, write_kubeconfig
from modelarts_operator.local.kube.store import Watcher

GROUP, VERSION = "modelarts.mlops.dev", "v1alpha1"
PLURALS = ("mnistdatasets", "modelartsalgorithms", "trainingjobs", "modelartsservices")
BENCH_AGENT = "modelarts-bench/idle"
CODE_BUCKET = "bench-code"
DATA_BUCKET = "bench-data"
DEFAULT_POLL_SLOW = 300.0
DEFAULT_SECRET_CACHE = 5.0
SIZES = (100, 250, 500)
BARE = ROOT / "bench" / "bare_operator.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Kopf keeps an object's worker for 5 s after its last event (settings.batching.idle_timeout), and both
# operators digest the watch events of their own writes for a few seconds after the last Ready:
# an idle window starts this long after it.
SETTLE_S = 10.0


# --- counting ------------------------------------------------------------------------------------

class Counters:
    """Request counts from several server threads, keyed ("kube", namespace, who, verb, resource) or
    ("obs", method, what); the local ModelArts counts its own ("modelarts", operation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, ...]] = Counter()

    def add(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> Counter[tuple[str, ...]]:
        with self._lock:
            return Counter(self._counts)


def kube_request(request: web.Request) -> tuple[str, str, str, str]:
    """(namespace or "", who, verb, resource) of one Kubernetes API request: the two operators watch
    a namespace each, so the namespace tells whose a request is."""
    agent = request.headers.get("User-Agent", "")
    who = ("bench" if agent.startswith(BENCH_AGENT) else "kopf" if agent.startswith("kopf/")
           else "kubectl" if agent.startswith("kubectl") else "client")
    parts = [p for p in request.path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else []
    if not rest:
        return "", who, "GET", "discovery"
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    verb = request.method
    if verb == "GET":
        verb = "WATCH" if request.query.get("watch", "").lower() in ("1", "true") else "GET" if len(rest) > 1 else "LIST"
    return namespace, who, verb, resource


class Recorder:
    """An in-process watcher of the emulator's store: when each object was added, became Ready, was
    changed (a new generation) and Synced at that generation, and was deleted. Runs on the store's
    loop, in the write itself: no polling, no HTTP."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.added: dict[tuple[str, str], float] = {}
        self.ready: dict[tuple[str, str], float] = {}
        self.generation: dict[tuple[str, str, int], float] = {}
        self.synced: dict[tuple[str, str, int], float] = {}
        self.deleted: dict[tuple[str, str], float] = {}

    def put_nowait(self, event) -> None:  # the store calls this as it would a watcher's queue
        if event is None:
            return
        now = time.monotonic()
        meta, status = event.obj["metadata"], event.obj.get("status") or {}
        ident = (meta.get("namespace", ""), meta["name"])
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        generation = meta.get("generation") or 0
        with self.lock:
            if event.type == "ADDED":
                self.added.setdefault(ident, now)
            if event.type == "DELETED":
                self.deleted.setdefault(ident, now)
                return
            if conditions.get("Ready") == "True":
                self.ready.setdefault(ident, now)
            if event.prev is not None and (event.prev["metadata"].get("generation") or 0) != generation:
                self.generation.setdefault((*ident, generation), now)
            if conditions.get("Synced") == "True" and status.get("observedGeneration") == generation:
                self.synced.setdefault((*ident, generation), now)

    def ready_in(self, namespace: str) -> dict[str, float]:
        with self.lock:
            return {name: t for (ns, name), t in self.ready.items() if ns == namespace}


class CountingKube:
    """The emulator's KubeServer on a loop of its own, with a counting middleware and the Recorder."""

    def __init__(self, counters: Counters, recorder: Recorder, kubeconfig: Path) -> None:
        self.counters, self.recorder, self.kubeconfig = counters, recorder, kubeconfig
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-kube", daemon=True)
        self.url = ""

    def start(self) -> CountingKube:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=60)
        return self

    async def _start(self) -> None:
        self.server = KubeServer()
        counters = self.counters

        @web.middleware
        async def count(request: web.Request, handler):
            counters.add(("kube", *kube_request(request)))
            return await handler(request)

        self.server.app.middlewares.append(count)
        self.runner = await self.server.start("127.0.0.1", 0)
        self.url = f"http://{self.server.address}"
        write_kubeconfig(self.kubeconfig, self.url)
        for plural in PLURALS:
            self.server.store.watchers.add(Watcher((GROUP, plural), None, lambda obj: True, self.recorder))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(self.runner), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


class ObsProxy:
    """A reverse proxy in front of the local OBS that counts requests and stamps each LIST by prefix
    (an algorithm's first cloud call, and its first after a spec change, is the LIST of its code folder)."""

    HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
           "host", "expect", "content-length"}

    def __init__(self, upstream: str, counters: Counters) -> None:
        self.upstream, self.counters = upstream.rstrip("/"), counters
        self.lists: dict[str, list[float]] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-obs-proxy", daemon=True)
        self.url = ""

    def start(self) -> ObsProxy:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=60)
        return self

    async def _start(self) -> None:
        self.session = ClientSession(connector=TCPConnector(limit=64), auto_decompress=False,
                                     timeout=ClientTimeout(total=300))
        app = web.Application(client_max_size=1024 ** 3)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        parts = [p for p in request.path.split("/") if p]
        what = "object" if len(parts) > 1 else "bucket"
        if request.method == "GET" and len(parts) == 1:
            what = "list"
            self.lists.setdefault(f"{parts[0]}/{request.query.get('prefix', '')}", []).append(now)
        self.counters.add(("obs", request.method, what))
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self.HOP}
        async with self.session.request(request.method, URL(self.upstream + request.raw_path, encoded=True),
                                        headers=headers, data=body or None, allow_redirects=False) as answer:
            payload = await answer.read()
            out = [(k, v) for k, v in answer.headers.items() if k.lower() not in self.HOP]
            if request.method == "HEAD" and "Content-Length" in answer.headers:
                out.append(("Content-Length", answer.headers["Content-Length"]))
            response = web.Response(status=answer.status, body=payload if request.method != "HEAD" else None)
            for key, value in out:
                response.headers.add(key, value)
            return response

    def list_after(self, prefix: str, since: float) -> float | None:
        """When the first LIST of `prefix` after `since` arrived."""
        return next((t for t in list(self.lists.get(prefix, ())) if t >= since), None)

    def stop(self) -> None:
        async def close():
            await self.session.close()
            await self.runner.cleanup()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


# --- the benchmark's own Kubernetes client -------------------------------------------------------------

class Client:
    """Plain JSON over one keep-alive connection, with this benchmark's User-Agent."""

    def __init__(self, url: str) -> None:
        self.address = URL(url)
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.address.host, self.address.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"User-Agent": BENCH_AGENT, "Content-Type": content_type, "Accept": "application/json"}
        for attempt in range(2):
            try:
                self.conn.request(method, path, data, headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:500]!r}")
        return json.loads(payload) if payload else None

    def create(self, namespace: str, plural: str, obj: dict) -> dict:
        return self.request("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}", obj)

    def namespace(self, name: str, secret: dict[str, str]) -> None:
        self.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        data = {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}
        self.request("POST", f"/api/v1/namespaces/{name}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "modelarts-credentials"}, "data": data})


def algorithm(name: str, folder: str) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelArtsAlgorithm", "metadata": {"name": name},
            "spec": {"code": {"obsPath": f"obs://{CODE_BUCKET}/{folder}/"}, "bootFile": "train.py"}}


def dataset(name: str) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MnistDataset", "metadata": {"name": name},
            "spec": {"source": {"type": "Local"}, "target": f"obs://{DATA_BUCKET}/{name}/"}}


# --- one operator process ------------------------------------------------------------------------

class Process:
    """An operator subprocess with its CPU time and memory from /proc."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as out:
            out.write(f"\n===== {' '.join(argv[1:])} =====\n".encode())
            out.flush()
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def cpu_s(self) -> float:
        """utime + stime of the whole process, dead threads included (10 ms ticks)."""
        stat = Path(f"/proc/{self.popen.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def thread_cpu_s(self) -> float:
        """CPU time of the live threads in nanoseconds (schedstat): precise enough for an idle window."""
        total = 0
        for task in Path(f"/proc/{self.popen.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total / 1e9

    def memory_mb(self) -> dict[str, float]:
        values = {}
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = round(int(value.split()[0]) / 1024, 1)
        return {"rss_mb": values["VmRSS"], "peak_rss_mb": values["VmHWM"]}

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)


# --- the stack -------------------------------------------------------------------------------------

class Stack:
    def __init__(self, folder: Path, probes: int) -> None:
        self.folder, self.probes = folder, probes

    def __enter__(self) -> Stack:
        self.counters, self.recorder = Counters(), Recorder()
        self.cloud = LocalCloud().start()
        try:
            self.kube = CountingKube(self.counters, self.recorder, self.folder / "kubeconfig").start()
            self.proxy = ObsProxy(self.cloud.obs_endpoint, self.counters).start()
            env = dict(os.environ, KUBECONFIG=str(self.folder / "kubeconfig"), KUBECACHEDIR=str(self.folder / "kubecache"))
            subprocess.run(["kubectl", "apply", "-k", str(data.crds())], check=True, capture_output=True, env=env)
            subprocess.run(["kubectl", "wait", "--for=condition=Established", "crd", "--all", "--timeout=30s"],
                           check=True, capture_output=True, env=env)
            self.client = Client(self.kube.url)
            creds = self.cloud.credentials()
            store = ObsStore(lambda: CloudCredentials.from_mapping(creds))
            store.ensure_bucket(CODE_BUCKET)
            for folder in ["shared", *(f"probe-{i}" for i in range(self.probes))]:
                store.upload_bytes(b"print('idle')\n", ObsUrl(CODE_BUCKET, f"{folder}/train.py"))
            self.secret = dict(creds, obsEndpoint=self.proxy.url)  # the operators' OBS traffic goes through the proxy
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for part in ("proxy", "kube"):
            if hasattr(self, part):
                getattr(self, part).stop()
        self.cloud.stop()

    def requests(self) -> Counter[tuple[str, ...]]:
        counts = self.counters.snapshot()
        for operation, n in self.cloud.counters().items():
            counts[("modelarts", operation)] += n
        return counts

    def env(self, **extra: str) -> dict[str, str]:
        return dict(os.environ, KUBECONFIG=str(self.folder / "kubeconfig"), PYTHONUNBUFFERED="1",
                    MODELARTS_OPERATOR_WORK_DIR=str(self.folder / "work"), **extra)

    def start(self, argv: list[str], name: str, namespace: str, **env: str) -> Process:
        """Start an operator and wait until it watches all four kinds in its namespace."""
        before = self.requests()
        process = Process(argv, self.env(**env), self.folder / f"{name}.log")
        deadline = time.monotonic() + 120
        while True:
            new = self.requests() - before
            if all(new[("kube", namespace, "kopf", "WATCH", plural)] for plural in PLURALS):
                break
            if not process.alive() or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{name} did not start watching:\n{process.tail()}")
            time.sleep(0.05)
        time.sleep(0.5)
        return process


# --- measuring ---------------------------------------------------------------------------------------

def summarize(counts: Counter[tuple[str, ...]], namespace: str, cloud_too: bool, objects: int,
              intervals: float) -> dict:
    """Requests of one operator per object per interval, with a breakdown: the Kubernetes requests in
    its namespace or cluster-wide (this benchmark's own excluded), and the cloud's when it is ours (the
    bare operator makes none)."""
    mine = {}
    for key, n in counts.items():
        if n <= 0:
            continue
        if key[0] == "kube" and key[1] in (namespace, "") and key[2] != "bench":
            mine[("kube", *key[2:]) if key[1] else ("kube", "cluster", *key[2:])] = n
        elif key[0] != "kube" and cloud_too:
            mine[key] = n
    per = lambda n: round(n / objects / intervals, 4)  # noqa: E731
    cloud = sum(n for key, n in mine.items() if key[0] != "kube")
    kube = sum(n for key, n in mine.items() if key[0] == "kube")
    return {
        "cloud": cloud, "kube": kube,
        "cloud_per_object": per(cloud), "kube_per_object": per(kube), "total_per_object": per(cloud + kube),
        "by_request": {" ".join(key): n for key, n in sorted(mine.items())},
    }


def window(stack: Stack, operators: dict[str, tuple[Process, str]], seconds: float, objects: int,
           intervals: float) -> dict:
    """One idle window for every running operator at once: CPU time, memory and requests."""
    counts, started = stack.requests(), time.monotonic()
    cpu = {name: process.thread_cpu_s() for name, (process, _) in operators.items()}
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    used = {name: process.thread_cpu_s() - cpu[name] for name, (process, _) in operators.items()}
    counts = stack.requests() - counts
    return {name: {"seconds": round(elapsed, 1), "cpu_s": round(used[name], 3),
                   "cpu_s_per_min": round(used[name] / elapsed * 60, 4), **process.memory_mb(),
                   "requests": summarize(counts, namespace, name == "ours", objects, intervals)}
            for name, (process, namespace) in operators.items()}


def apply_all(stack: Stack, namespace: str, n: int, datasets: int, process: Process, timeout: float) -> dict:
    """Create the N objects, then wait until every one is Ready: seconds from the first create."""
    cpu = process.cpu_s()
    names = []
    started = time.monotonic()
    for i in range(n - datasets):
        names.append(stack.client.create(namespace, "modelartsalgorithms", algorithm(f"alg-{i:04d}", "shared"))
                     ["metadata"]["name"])
    for i in range(datasets):
        names.append(stack.client.create(namespace, "mnistdatasets", dataset(f"data-{i}"))["metadata"]["name"])
    created = time.monotonic() - started
    deadline = started + timeout
    while len(ready := stack.recorder.ready_in(namespace)) < n:
        if not process.alive():
            raise RuntimeError(f"the operator died:\n{process.tail()}")
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    algorithms = [ready[name] for name in names if name.startswith("alg-") and name in ready]
    result = {
        "objects": n, "created_s": round(created, 2), "ready": len(ready),
        "apply_to_all_ready_s": round(max(ready.values()) - started, 2) if len(ready) == n else None,
        "apply_to_algorithms_ready_s": round(max(algorithms) - started, 2) if len(algorithms) == n - datasets else None,
        "cpu_s": round(process.cpu_s() - cpu, 2),
    }
    if len(ready) < n:
        result["timed_out_after_s"] = timeout
    return result


def probes(stack: Stack, namespace: str, count: int, timeout: float = 60) -> dict:
    """One probe algorithm at a time, each with its own code folder: created -> its first OBS LIST,
    then one spec change at a time (deletionPolicy) -> its next OBS LIST and Synced at the new
    generation. Then deleted."""
    first_call, synced, change_call = [], [], []
    rec = stack.recorder

    def wait(check, what):
        deadline = time.monotonic() + timeout
        while (value := check()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.01)
        return value

    for i in range(count):
        name = f"probe-{i}"
        stack.client.create(namespace, "modelartsalgorithms", algorithm(name, name))
        added = wait(lambda n=name: rec.added.get((namespace, n)), f"{name} added")
        listed = wait(lambda n=name: stack.proxy.list_after(f"{CODE_BUCKET}/{n}/", 0), f"{name}'s first cloud call")
        first_call.append(listed - added)
        wait(lambda n=name: rec.ready.get((namespace, n)), f"{name} Ready")
    time.sleep(0.5)
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/modelartsalgorithms"
    for i in range(count):
        name = f"probe-{i}"
        obj = stack.client.request("PATCH", f"{base}/{name}", {"spec": {"deletionPolicy": "Retain"}},
                                   "application/merge-patch+json")
        generation = obj["metadata"]["generation"]
        changed = wait(lambda n=name, g=generation: rec.generation.get((namespace, n, g)), f"{name} changed")
        done = wait(lambda n=name, g=generation: rec.synced.get((namespace, n, g)), f"{name} Synced")
        synced.append(done - changed)
        listed = stack.proxy.list_after(f"{CODE_BUCKET}/{name}/", changed)
        if listed is not None:
            change_call.append(listed - changed)
    for i in range(count):
        stack.client.request("DELETE", f"{base}/probe-{i}")
    for i in range(count):
        wait(lambda n=f"probe-{i}": rec.deleted.get((namespace, n)), f"probe-{i} deleted")
    return {"apply_to_first_cloud_call": percentiles(first_call), "spec_change_to_synced": percentiles(synced),
            "spec_change_to_first_cloud_call": percentiles(change_call)}


def wait_rechecked(stack: Stack, before: Counter, started: float, algorithms: int, process: Process,
                   timeout: float = 300) -> float:
    """After a restart every daemon reconciles once at once: wait until each algorithm was read again."""
    while (stack.requests() - before)[("modelarts", "show_algorithm_by_uuid")] < algorithms:
        if not process.alive() or time.monotonic() - started > timeout:
            raise RuntimeError(f"the restarted operator did not recheck every object:\n{process.tail()}")
        time.sleep(0.1)
    return time.monotonic() - started


def measure_size(n: int, datasets: int, poll_slow: float, idle_window: float, probe_count: int,
                 ready_timeout: float) -> dict:
    datasets = min(datasets, n // 10)
    with tempfile.TemporaryDirectory(prefix=f"bench-idle-{n}-") as tmp, Stack(Path(tmp), probe_count) as stack:
        result: dict[str, Any] = {"objects": n, "algorithms": n - datasets, "datasets": datasets}
        bare_ns, ours_ns = f"bare-{n}", f"ours-{n}"
        for ns in (bare_ns, ours_ns):
            stack.client.namespace(ns, stack.secret)
        run = [sys.executable, "-m", "modelarts_operator.cli", "run", "--namespace", ours_ns, "--standalone"]
        running: list[Process] = []
        try:
            # apply -> all Ready: bare first, alone; then ours (the bare one idles meanwhile)
            bare = stack.start([sys.executable, str(BARE), "--namespace", bare_ns], "bare", bare_ns)
            running.append(bare)
            result["bare_apply"] = apply_all(stack, bare_ns, n, datasets, bare, ready_timeout)
            ours = stack.start([*run, "--poll-slow", str(DEFAULT_POLL_SLOW)], "ours", ours_ns)
            running.append(ours)
            result["ours_apply"] = apply_all(stack, ours_ns, n, datasets, ours, ready_timeout)
            if result["ours_apply"]["ready"] < n:
                result["ours_note"] = "not every object became Ready in time: no idle figures"
                return result
            # both idle, side by side in one window; ours at the defaults has no recheck due
            time.sleep(SETTLE_S)
            floor = window(stack, {"bare": (bare, bare_ns), "ours": (ours, ours_ns)}, idle_window, n, 1)
            result["bare_idle"], result["ours_floor"] = floor["bare"], floor["ours"]
            result["probes"] = probes(stack, ours_ns, probe_count)
            ours.kill()
            # ours restarted with a short stable interval: two intervals of rechecks, bare beside it
            before, started = stack.requests(), time.monotonic()
            ours = stack.start([*run, "--poll-slow", str(poll_slow)], "ours-rechecks", ours_ns)
            running.append(ours)
            result["restart_to_all_rechecked_s"] = round(wait_rechecked(stack, before, started, n - datasets, ours), 2)
            time.sleep(1)
            fast = window(stack, {"bare": (bare, bare_ns), "ours": (ours, ours_ns)}, 2 * poll_slow, n, 2)
            result["bare_beside_rechecks"], result["ours_rechecks"] = fast["bare"], fast["ours"]
        finally:
            for process in running:
                process.kill()
        result.update(ratios(result, poll_slow / DEFAULT_POLL_SLOW))
        return result


def ratios(result: dict, scale: float) -> dict:
    """Ours against bare, side by side from this run; CPU projected to the default interval."""
    bare, floor, fast = result["bare_idle"], result["ours_floor"], result["ours_rechecks"]
    beside = result["bare_beside_rechecks"]
    projected = floor["cpu_s_per_min"] + (fast["cpu_s_per_min"] - floor["cpu_s_per_min"]) * scale
    # the bare operator idles through both windows: both make its rate (more CPU ticks to go on)
    bare_rate = (bare["cpu_s"] + beside["cpu_s"]) / (bare["seconds"] + beside["seconds"]) * 60
    # a recheck is one algorithm GET or one dataset LIST
    by = fast["requests"]["by_request"]
    rechecks = by.get("modelarts show_algorithm_by_uuid", 0) + by.get("obs GET list", 0)
    above_floor = fast["cpu_s"] - floor["cpu_s_per_min"] * fast["seconds"] / 60
    n = result["objects"]
    requests = fast["requests"]
    secret_reads = sum(count for key, count in requests["by_request"].items() if key.endswith(" secrets"))
    bound = (requests["cloud"] + requests["kube"] - secret_reads) / n / 2 + DEFAULT_POLL_SLOW / DEFAULT_SECRET_CACHE / n
    ratio = lambda a, b: round(a / b, 2) if b else None  # noqa: E731
    return {
        "bare_cpu_s_per_min": round(bare_rate, 4),
        "cpu_s_per_min_at_default": round(projected, 4),
        "cpu_ratio_at_default": ratio(projected, bare_rate),
        "cpu_ratio_rechecks_window": ratio(fast["cpu_s_per_min"], beside["cpu_s_per_min"]),
        "cpu_ratio_floor_window": ratio(floor["cpu_s_per_min"], bare["cpu_s_per_min"]),
        "rechecks": rechecks,
        "cpu_ms_per_recheck": round(above_floor / rechecks * 1000, 2) if rechecks else None,
        "secret_reads_per_object": round(secret_reads / n / 2, 4),
        "total_per_object_bound": round(bound, 4),
        "bare_rss_mb": max(bare["rss_mb"], beside["rss_mb"]),
        "rss_mb": max(floor["rss_mb"], fast["rss_mb"]),
        "peak_rss_mb": max(floor["peak_rss_mb"], fast["peak_rss_mb"]),
        "rss_ratio": ratio(max(floor["rss_mb"], fast["rss_mb"]), max(bare["rss_mb"], beside["rss_mb"])),
        "apply_ratio": ratio(result["ours_apply"]["apply_to_all_ready_s"] or 0, result["bare_apply"]["apply_to_all_ready_s"]),
    }


def run(sizes: list[int] | None = None, previous: dict | None = None, poll_slow: float = 20.0,
        idle_window: float = 60.0, datasets: int = 2, probe_count: int = 20, budget_s: float = 840.0,
        ready_timeout: float = 240.0) -> dict:
    """Every size in `sizes`, each on a fresh stack; sizes not run keep their previous results."""
    started = time.monotonic()
    results = dict((previous or {}).get("sizes") or {})
    for n in sizes or SIZES:
        spent = time.monotonic() - started
        if spent > budget_s:
            results[str(n)] = {"objects": n, "skipped": f"time budget of {budget_s:.0f} s spent ({spent:.0f} s)"}
            continue
        print(f"bench idle: {n} objects ...", flush=True)
        size_started = time.monotonic()
        try:
            results[str(n)] = measure_size(n, datasets, poll_slow, idle_window, probe_count, ready_timeout)
        except Exception as exc:  # one size failing keeps the others' figures; the report says what happened
            results[str(n)] = {"objects": n, "failed": f"{type(exc).__name__}: {exc}"[-3000:]}
        results[str(n)]["wall_s"] = round(time.monotonic() - size_started, 1)
        results[str(n)]["measured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        print(f"bench idle: {n} objects done in {results[str(n)]['wall_s']} s", flush=True)
    return {
        "poll_slow_s": poll_slow, "default_poll_slow_s": DEFAULT_POLL_SLOW, "idle_window_s": idle_window,
        "secret_cache_s": DEFAULT_SECRET_CACHE, "probes": probe_count,
        "sizes": dict(sorted(results.items(), key=lambda item: int(item[0]))),
        "wall_s": round(time.monotonic() - started, 1), "last_run_sizes": list(sizes or SIZES),
    }


if __name__ == "__main__":  # a quick look without touching the results: python -m bench.idle 20
    print(json.dumps(run([int(a) for a in sys.argv[1:]] or [20], idle_window=10, poll_slow=10, probe_count=3), indent=1))
