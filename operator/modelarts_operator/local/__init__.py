"""The local stack: what stands in for Huawei Cloud and a Kubernetes cluster on one machine.

`cloud/` (OBS and a ModelArts emulator that trains and serves), `kube/` (a Kubernetes API emulator),
`serving/` (the runtime for ModelArts model packages), `realkube.py` (a real control plane built from
source), `stack.py` (`modelarts-operator local up|down`) and `demo.py` (`make demo`). The operator
itself (`api`, `cloud`, `controller`) never imports this package (an import-linter contract, see
docs/architecture.md); only `cli.py` does, lazily. It needs the `[local]` extra, and a checkout of the
project for the manifests and `tools/kube/`.
"""

import socket
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # the checkout: manifests/, tools/kube/


def free_port() -> int:
    """A loopback port free now, for a process that must be told its port (the operator's liveness probe,
    etcd, kube-apiserver); the others bind port 0. No port of the local stack is fixed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
