"""The foreground runner: prints endpoints, writes the credentials file, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from huaweicloudsdkmodelarts.v1 import ListAlgorithmsRequest
from localcloud.cloudkit import sdk_client


class _Endpoints:
    def __init__(self, document: dict) -> None:
        self.ak, self.sk, self.project_id = document["ak"], document["sk"], document["projectId"]
        self.modelarts_endpoint = document["modelartsEndpoint"]


def test_serve_runs_until_sigterm(tmp_path):
    endpoints = tmp_path / "cloud.json"
    process = subprocess.Popen(
        [sys.executable, "-c", "from modelarts_operator.local.cloud.main import serve; import sys; serve(endpoints_file=sys.argv[1])",
         str(endpoints)], stdout=subprocess.PIPE, text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(6)]
        assert lines[0].startswith("ModelArts endpoint: http://127.0.0.1:")
        assert str(endpoints) in lines[4]
        document = json.loads(endpoints.read_text())
        assert document["sk"] not in "".join(lines) and document["authToken"] not in "".join(lines)
        assert sdk_client(_Endpoints(document)).list_algorithms(ListAlgorithmsRequest()).total == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.stdout.close()
