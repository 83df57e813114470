"""Training jobs with node_count N: N real worker processes with ModelArts' distributed-job environment,
their own logs and task statuses; one failing (or killed) worker fails the job and stops the others;
terminate and a stopping cloud leave no process. Boot files are tiny Python scripts (no TensorFlow)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from huaweicloudsdkmodelarts.v1 import (
    CreateTrainingJobRequest,
    ShowTrainingJobLogsPreviewRequest,
    StopTrainingJobRequest,
)
from localcloud.cloudkit import BUCKET, Harness
from localcloud.test_training import error_of, inline_script, job_body, show_job, wait_phase

from modelarts_operator.cli import build_parser
from modelarts_operator.cloud import ModelArtsApi
from modelarts_operator.local.cloud import LocalCloud
from modelarts_operator.local.cloud.workers import KILL_GRACE_S
from support import FAST_RETRIES, SecretData, wait_for

ENVIRONMENT = ("MA_NUM_HOSTS", "VC_WORKER_NUM", "VC_TASK_INDEX", "VC_WORKER_HOSTS", "MA_TASK_NAME",
               "MA_CURRENT_IP", "MA_JOB_DIR")

PRINT_ENVIRONMENT = f"""
    import argparse, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--data_url")
    parser.add_argument("--train_url")
    args, _ = parser.parse_known_args()
    for key in {ENVIRONMENT!r}:
        print(f"{{key}}={{os.environ.get(key)}}")
    print(f"data_url={{args.data_url}}")
    print(f"inputs={{sorted(os.listdir(args.data_url))}}")
    index = int(os.environ["VC_TASK_INDEX"])
    if index < 2:  # the other workers write nothing
        for name in (f"worker-{{index}}.txt", "shared.txt"):
            with open(os.path.join(args.train_url, name), "w") as f:
                f.write(f"from worker {{index}}")
"""

# Each worker binds its own port from VC_WORKER_HOSTS; worker 1 connects to worker 0's.
TALK = """
    import os, socket, time
    hosts = [h.rsplit(":", 1) for h in os.environ["VC_WORKER_HOSTS"].split(",")]
    index = int(os.environ["VC_TASK_INDEX"])
    own = socket.create_server((hosts[index][0], int(hosts[index][1])))
    if index == 0:
        own.settimeout(30)
        conn, _ = own.accept()
        print("worker 0 heard:", conn.recv(100).decode(), flush=True)
        conn.sendall(b"welcome")
    else:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = socket.create_connection((hosts[0][0], int(hosts[0][1])), timeout=5)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        conn.sendall(f"hello from worker {index}".encode())
        print("worker 1 heard:", conn.recv(100).decode(), flush=True)
"""

# Worker 1 fails after a moment, leaving a child behind; the others would sleep for five minutes.
ONE_FAILS = """
    import os, subprocess, sys, time
    print("pid", os.getpid(), flush=True)
    if os.environ["VC_TASK_INDEX"] == "1":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        print("child", child.pid, flush=True)
        time.sleep(1)
        print("the last words of worker 1", flush=True)
        sys.exit(3)
    time.sleep(300)
"""

SLEEPS = 'import os, time\nprint("sleeping", os.getpid(), flush=True)\ntime.sleep(300)\n'

# Each worker leaves a child behind; worker 2 (and so its child) ignores SIGTERM.
SLEEPS_WITH_CHILD = """
    import os, signal, subprocess, sys, time
    if os.environ["VC_TASK_INDEX"] == "2":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(f"pids {os.getpid()} {child.pid}", flush=True)
    time.sleep(300)
"""


def distributed_job(lc, tmp_path, name: str, script: str, node_count: int) -> str:
    lc.put_text("data/sample.txt", "one")
    body = job_body(name, inline_script(lc, tmp_path, name, script), outputs=f"/{BUCKET}/{name}-out/")
    body["spec"]["resource"]["node_count"] = node_count
    return lc.client.create_training_job(CreateTrainingJobRequest(body=body)).metadata.id


def log_of(lc, job_id: str, task: str) -> str:
    return lc.client.show_training_job_logs_preview(
        ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id=task)).content


def printed(log: str) -> dict[str, str]:
    """KEY=value lines the boot file printed."""
    return dict(line.split("=", 1) for line in log.splitlines() if "=" in line and not line.startswith("["))


def statuses(job: dict) -> list[tuple[str, int, str]]:
    return [(t["task"], t["exit_code"], t["message"]) for t in job["status"]["task_statuses"]]


def gone(pid: int) -> bool:
    """No such process, nor a process group of that id (a zombie still waits for its parent: not gone)."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
            return False
        except ProcessLookupError:
            pass
    return True


def test_each_worker_gets_the_distributed_environment_its_own_folder_and_log(lc, tmp_path):
    job_id = distributed_job(lc, tmp_path, "dist-env", PRINT_ENVIRONMENT, node_count=4)
    job = wait_phase(lc, job_id, {"Completed", "Failed"})
    tasks = [f"worker-{i}" for i in range(4)]
    assert job["status"]["phase"] == "Completed", [log_of(lc, job_id, t) for t in tasks]
    assert job["status"]["tasks"] == tasks
    assert statuses(job) == [(task, 0, "") for task in tasks]
    assert job["spec"]["resource"]["node_count"] == 4 and job["metadata"]["name"] == "dist-env"

    seen = [printed(log_of(lc, job_id, task)) for task in tasks]
    for index, env in enumerate(seen):
        assert (env["VC_TASK_INDEX"], env["VC_WORKER_NUM"], env["MA_NUM_HOSTS"]) == (str(index), "4", "4")
        assert (env["MA_TASK_NAME"], env["MA_CURRENT_IP"]) == ("worker", "127.0.0.1")
        assert env["MA_JOB_DIR"].endswith("/user-job-dir") and env["inputs"] == "['sample.txt']"
    assert len({env["VC_WORKER_HOSTS"] for env in seen}) == 1
    hosts = seen[0]["VC_WORKER_HOSTS"].split(",")
    assert [h.split(":")[0] for h in hosts] == ["127.0.0.1"] * 4
    assert len({int(h.split(":")[1]) for h in hosts}) == 4
    assert len({env["MA_JOB_DIR"] for env in seen}) == 4 and len({env["data_url"] for env in seen}) == 4

    # merged outputs: workers 0 and 1 wrote, 2 and 3 nothing; worker 0's copy of a shared name wins
    assert lc.keys("dist-env-out/") == [f"dist-env-out/{name}" for name in ("shared.txt", "worker-0.txt", "worker-1.txt")]
    shared = lc.obs.getObject(BUCKET, "dist-env-out/shared.txt", loadStreamInMemory=True)
    assert shared.body.buffer == b"from worker 0"

    # the operator's client reads any worker's log; an unknown task is refused
    api = ModelArtsApi(SecretData(lc.cloud.credentials()).provider(), FAST_RETRIES)
    assert "VC_TASK_INDEX=3" in api.training_job_log(job_id, task="worker-3")
    assert "VC_TASK_INDEX=0" in api.training_job_log(job_id)
    unknown = error_of(lambda: log_of(lc, job_id, "worker-4"))
    assert unknown.status_code == 400 and "worker-4" in unknown.error_msg


def test_workers_talk_over_the_ports_they_are_given(lc, tmp_path):
    job_id = distributed_job(lc, tmp_path, "dist-talk", TALK, node_count=2)
    job = wait_phase(lc, job_id, {"Completed", "Failed"})
    logs = [log_of(lc, job_id, f"worker-{i}") for i in range(2)]
    assert job["status"]["phase"] == "Completed", logs
    assert "worker 0 heard: hello from worker 1" in logs[0]
    assert "worker 1 heard: welcome" in logs[1]


def test_a_failing_worker_fails_the_job_and_the_others_are_stopped_at_once(lc, tmp_path):
    started = time.monotonic()
    job_id = distributed_job(lc, tmp_path, "dist-fail", ONE_FAILS, node_count=3)
    job = wait_phase(lc, job_id, {"Completed", "Failed"}, timeout=30)
    assert time.monotonic() - started < 30  # not the 300 s the others would sleep
    assert job["status"]["phase"] == "Failed"
    (task0, code0, message0), (task1, code1, message1), (task2, code2, message2) = statuses(job)
    assert (task1, code1) == ("worker-1", 3)
    assert message1.startswith("exit with 3") and "the last words of worker 1" in message1
    # stopped by SIGTERM at once, not by the SIGKILL after the grace period
    assert (task0, code0, message0) == ("worker-0", -signal.SIGTERM, "stopped because worker-1 failed")
    assert (task2, code2, message2) == ("worker-2", -signal.SIGTERM, "stopped because worker-1 failed")
    assert job["status"]["running_records"][-1]["end_related_task"] == "worker-1"
    logs = [log_of(lc, job_id, f"worker-{i}") for i in range(3)]
    pids = [int(printed_pid(log)) for log in logs]
    child = int(next(line.split()[1] for line in logs[1].splitlines() if line.startswith("child ")))
    # a worker's leftover children end with it, as a container's do
    wait_for(lambda: all(gone(pid) for pid in [*pids, child]), timeout=10, what="every worker and child gone")
    assert lc.keys("dist-fail-out/") == []


def printed_pid(log: str) -> str:
    return next(line.split()[1] for line in log.splitlines() if line.startswith(("pid ", "sleeping ")))


def test_a_worker_killed_from_outside_fails_the_job_naming_it(lc, tmp_path):
    job_id = distributed_job(lc, tmp_path, "dist-killed", SLEEPS, node_count=2)
    pids = wait_for(lambda: len(p := lc.cloud.worker_pids(job_id)) == 2 and p, what="both workers running")
    assert sorted(pids) == ["worker-0", "worker-1"]
    wait_for(lambda: all("sleeping" in log_of(lc, job_id, task) for task in pids), what="both boot files")
    os.kill(pids["worker-1"], signal.SIGKILL)
    job = wait_phase(lc, job_id, {"Completed", "Failed"}, timeout=30)
    assert job["status"]["phase"] == "Failed"
    (task0, code0, message0), (task1, code1, message1) = statuses(job)
    assert (task1, code1) == ("worker-1", -signal.SIGKILL) and "killed by signal 9" in message1
    assert (task0, code0, message0) == ("worker-0", -signal.SIGTERM, "stopped because worker-1 failed")
    assert job["status"]["running_records"][-1]["end_related_task"] == "worker-1"
    assert lc.cloud.worker_pids(job_id) == {}
    assert all(gone(pid) for pid in pids.values())


def test_terminate_stops_every_worker_and_leaves_no_process(lc, tmp_path):
    job_id = distributed_job(lc, tmp_path, "dist-terminate", SLEEPS_WITH_CHILD, node_count=3)
    def pids_printed() -> list[int]:
        logs = [log_of(lc, job_id, f"worker-{i}") for i in range(3)]
        lines = [line for log in logs for line in log.splitlines() if line.startswith("pids ")]
        return len(lines) == 3 and [int(pid) for line in lines for pid in line.split()[1:]]

    pids = wait_for(pids_printed, what="every worker and its child")  # leader, child, leader, child, ...
    assert sorted(lc.cloud.worker_pids(job_id).values()) == sorted(pids[0::2])
    assert not any(gone(pid) for pid in pids)

    stopped = time.monotonic()
    stop = StopTrainingJobRequest(training_job_id=job_id, body={"action_type": "terminate"})
    lc.client.stop_training_job(stop)
    job = wait_phase(lc, job_id, {"Terminated"}, timeout=KILL_GRACE_S + 20)
    assert time.monotonic() - stopped < KILL_GRACE_S + 5
    assert statuses(job) == [
        ("worker-0", -signal.SIGTERM, "terminated by the user"),
        ("worker-1", -signal.SIGTERM, "terminated by the user"),
        ("worker-2", -signal.SIGKILL, "terminated by the user"),  # it ignored SIGTERM
    ]
    wait_for(lambda: all(gone(pid) for pid in pids), timeout=10, what="every worker and child process gone")


def test_node_count_is_bounded_by_max_nodes(lc, tmp_path):
    algorithm = inline_script(lc, tmp_path, "dist-bound", "print('never runs')\n")
    for node_count in (5, 0, "two", True):
        body = job_body("dist-bound", algorithm)
        body["spec"]["resource"]["node_count"] = node_count
        error = error_of(lambda b=body: lc.client.create_training_job(CreateTrainingJobRequest(body=b)))
        assert (error.status_code, error.error_code) == (400, "ModelArts.0104")
        assert "node_count must be an integer from 1 to 4" in error.error_msg
        assert "--max-nodes" in error.error_msg
    assert build_parser().parse_args(["local", "cloud", "--max-nodes", "8"]).max_nodes == 8
    assert build_parser().parse_args(["local", "cloud"]).max_nodes == 4
    with pytest.raises(ValueError, match="max_nodes"):
        LocalCloud(max_nodes=0)


def test_a_restart_marks_every_worker_lost_and_stopping_kills_them(tmp_path):
    with LocalCloud(state_dir=tmp_path / "state", max_nodes=2) as first:
        lc = Harness(first)
        too_many = job_body("dist-three", inline_script(lc, tmp_path, "dist-three", SLEEPS))
        too_many["spec"]["resource"]["node_count"] = 3
        error = error_of(lambda: lc.client.create_training_job(CreateTrainingJobRequest(body=too_many)))
        assert "from 1 to 2" in error.error_msg
        job_id = distributed_job(lc, tmp_path, "dist-lost", SLEEPS, node_count=2)
        pids = wait_for(lambda: len(p := first.worker_pids(job_id)) == 2 and p, what="both workers running")
    assert all(gone(pid) for pid in pids.values())
    with LocalCloud(state_dir=tmp_path / "state") as second:
        job = show_job(Harness(second), job_id)
        assert (job["status"]["phase"], job["status"]["secondary_phase"]) == ("Abnormal", "Lost")
        assert [(task, code) for task, code, _ in statuses(job)] == [("worker-0", -1), ("worker-1", -1)]
