"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

The binaries are built from their Go modules by `make kube` (tools/kube/). `RealKube` gives them a
PKI of their own (a CA, the apiserver's serving certificate, service-account signing keys), an admin
identity (a static token in group system:masters), RBAC authorization, and an audit log of every
request made by the identities under test, so a test can prove that the operator never needed a
permission that manifests/rbac.yaml does not grant. Every port is chosen free at start; the child
processes die with their parent (PR_SET_PDEATHSIG), so nothing outlives a crashed test run.
"""

from __future__ import annotations

import base64
import ctypes
import datetime
import ipaddress
import json
import os
import secrets
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from modelarts_operator.local import PROJECT_ROOT as ROOT
from modelarts_operator.local import free_port

BUILD_SCRIPT = ROOT / "tools" / "kube" / "build.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
ADMIN_USER = "modelarts-admin"
SERVICE_CIDR = "10.96.0.0/24"
# What kube-controller-manager runs: what a namespace deletion, garbage collection and service
# accounts need, nothing that schedules or manages nodes (no kubelet runs here).
CONTROLLERS = ("namespace-controller", "garbage-collector-controller", "serviceaccount-controller",
               "serviceaccount-token-controller", "root-ca-certificate-publisher-controller")


class KubeError(RuntimeError):
    pass


def binaries_dir() -> Path:
    """Where `make kube` puts the binaries: $MODELARTS_KUBE_BIN_DIR, else the build script's cache folder."""
    if os.environ.get("MODELARTS_KUBE_BIN_DIR"):
        return Path(os.environ["MODELARTS_KUBE_BIN_DIR"])
    if not BUILD_SCRIPT.exists():
        raise KubeError(f"no {BUILD_SCRIPT.relative_to(ROOT)}: set MODELARTS_KUBE_BIN_DIR to the binaries' folder")
    result = subprocess.run(["bash", str(BUILD_SCRIPT), "dir"], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise KubeError(f"tools/kube/build.sh dir: {result.stderr.strip()}")
    return Path(result.stdout.strip())


def missing_binaries(folder: Path) -> list[str]:
    return [name for name in BINARIES if not os.access(folder / name, os.X_OK)]


def operator_user() -> str:
    """The operator's user name on a cluster: its ServiceAccount from manifests/."""
    account = yaml.safe_load((ROOT / "manifests" / "serviceaccount.yaml").read_text())["metadata"]
    return f"system:serviceaccount:{account['namespace']}:{account['name']}"


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started us exits, however it exits."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class RealKube:
    """`with RealKube(folder) as kube:` a control plane; `kube.kubeconfig` is the admin's."""

    def __init__(self, folder: Path, bin_dir: Path | None = None, kubeconfig: Path | None = None,
                 audited_users: tuple[str, ...] = ()) -> None:
        self.folder = Path(folder)
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.kubeconfig = Path(kubeconfig) if kubeconfig else self.folder / "kubeconfig"
        self.audited_users = audited_users
        self.url = ""
        self.token = ""
        self.processes: dict[str, subprocess.Popen] = {}

    # --- files -----------------------------------------------------------------------------------

    @property
    def pki(self) -> Path:
        return self.folder / "pki"

    @property
    def ca_file(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.folder / "audit.log"

    def log(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"

    def _write_pki(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import NameOID

        self.pki.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)

        def pem_key(key) -> bytes:
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())

        def certificate(subject: str, key, issuer, issuer_key, ca: bool, names=()):
            builder = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                       .issuer_name(issuer).public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(minutes=5))
                       .not_valid_after(now + datetime.timedelta(days=365))
                       .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
            if names:
                builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
            return builder.sign(issuer_key, hashes.SHA256())

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelarts-local-ca")])
        ca_cert = certificate("modelarts-local-ca", ca_key, ca_name, ca_key, ca=True)
        server_key = ec.generate_private_key(ec.SECP256R1())
        service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
        names = [x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default",
                                           "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")]
        names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(service_ip)]
        server_cert = certificate("kube-apiserver", server_key, ca_name, ca_key, ca=False, names=names)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        (self.pki / "apiserver.crt").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        (self.pki / "apiserver.key").write_bytes(pem_key(server_key))
        (self.pki / "sa.key").write_bytes(pem_key(sa_key))
        (self.pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        for path in self.pki.glob("*.key"):
            path.chmod(0o600)

    def _write_tokens(self) -> dict[str, str]:
        """Static tokens: the admin (system:masters) and kube-controller-manager's own user."""
        tokens = {ADMIN_USER: secrets.token_hex(24), "system:kube-controller-manager": secrets.token_hex(24)}
        lines = [f'{tokens[ADMIN_USER]},{ADMIN_USER},uid-admin,"system:masters"',
                 f"{tokens['system:kube-controller-manager']},system:kube-controller-manager,uid-kcm"]
        path = self.pki / "tokens.csv"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return tokens

    def _write_audit_policy(self) -> Path:
        """Metadata of every request by the audited users (their 403s are what tests look for)."""
        rules = [{"level": "None", "omitStages": ["RequestReceived"], "users": [ADMIN_USER]}]
        if self.audited_users:
            rules.insert(0, {"level": "Metadata", "users": list(self.audited_users)})
        rules.append({"level": "None"})
        path = self.folder / "audit-policy.yaml"
        path.write_text(yaml.safe_dump({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                                        "omitStages": ["RequestReceived"], "rules": rules}))
        return path

    def write_kubeconfig(self, path: Path, user: str, token: str, namespace: str | None = None) -> Path:
        context = {"cluster": "local", "user": user}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "local",
            "clusters": [{"name": "local", "cluster": {
                "server": self.url,
                "certificate-authority-data": base64.b64encode(self.ca_file.read_bytes()).decode()}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "local", "context": context}],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    # --- processes -------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log(name), "ab") as out:
            process = subprocess.Popen([str(self.bin_dir / name), *args], stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.processes[name] = process
        return process

    def _wait(self, name: str, check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            process = self.processes[name]
            if process.poll() is not None:
                raise KubeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                if check():
                    return
            except (OSError, KubeError):
                pass
            if time.monotonic() > deadline:
                raise KubeError(f"{name} not ready after {timeout:.0f}s:\n{self.log_tail(name)}")
            time.sleep(0.2)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None,
                timeout: float = 10) -> tuple[int, dict]:
        """One API call as the admin (or with `token`): (HTTP status, decoded body)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"})
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                payload = response.read()
                return response.status, json.loads(payload) if payload.startswith(b"{") else {"text": payload.decode()}
        except urllib.error.HTTPError as error:
            payload = error.read()
            return error.code, json.loads(payload) if payload.startswith(b"{") else {"text": payload.decode()}

    def start(self) -> RealKube:
        self.bin_dir = self.bin_dir or binaries_dir()
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise KubeError(f"no {', '.join(missing)} in {self.bin_dir}: run make kube")
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._write_pki()
        tokens = self._write_tokens()
        self.token = tokens[ADMIN_USER]
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn("etcd", [
            "--name=local", f"--data-dir={self.folder / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=local=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",  # a throwaway test store: durability costs seconds per test on slow disks
            "--log-level=warn",
        ])

        def etcd_healthy() -> bool:
            with urllib.request.urlopen(f"{etcd_url}/health", timeout=2) as response:
                return json.loads(response.read()).get("health") == "true"

        self._wait("etcd", etcd_healthy, 60)

        self.url = f"https://127.0.0.1:{api_port}"
        self._spawn("kube-apiserver", [
            f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}", f"--cert-dir={self.pki}",
            f"--tls-cert-file={self.pki / 'apiserver.crt'}", f"--tls-private-key-file={self.pki / 'apiserver.key'}",
            f"--client-ca-file={self.ca_file}", f"--token-auth-file={self.pki / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--anonymous-auth=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.pki / 'sa.pub'}",
            f"--service-account-signing-key-file={self.pki / 'sa.key'}",
            f"--audit-policy-file={self._write_audit_policy()}", f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json", "--audit-log-mode=blocking",
            "--enable-priority-and-fairness=false",  # one client at a time here; APF adds controllers
            "--v=1",
        ])
        self._wait("kube-apiserver", lambda: self.request("GET", "/readyz", timeout=3)[0] == 200, 120)
        self.write_kubeconfig(self.kubeconfig, ADMIN_USER, self.token)

        kcm_config = self.write_kubeconfig(self.folder / "kube-controller-manager.kubeconfig",
                                           "system:kube-controller-manager", tokens["system:kube-controller-manager"])
        self._spawn("kube-controller-manager", [
            f"--kubeconfig={kcm_config}", "--secure-port=0", "--leader-elect=false",
            "--use-service-account-credentials=true", f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={self.pki / 'sa.key'}", f"--root-ca-file={self.ca_file}",
            "--concurrent-namespace-syncs=4", "--v=1",
        ])
        # It works once it has given the default namespace its ServiceAccount.
        self._wait("kube-controller-manager",
                   lambda: self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200, 120)

    def stop(self) -> None:
        """SIGTERM in reverse start order, SIGKILL after 15 s each; no process is left behind."""
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def __enter__(self) -> RealKube:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- identities --------------------------------------------------------------------------------

    def service_account_token(self, namespace: str, name: str, seconds: int = 86400) -> str:
        """A token for a ServiceAccount, from the TokenRequest API (as a projected volume gets it)."""
        status, answer = self.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": seconds}})
        if status != 201:
            raise KubeError(f"TokenRequest for {namespace}/{name}: {status} {answer.get('message', answer)}")
        return answer["status"]["token"]

    def install_operator_identity(self, path: Path | None = None) -> Path:
        """The operator's namespace, ServiceAccount and RBAC from manifests/, and a kubeconfig for it."""
        manifests = ROOT / "manifests"
        for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
            result = subprocess.run(["kubectl", "apply", "-f", str(manifests / name)], capture_output=True,
                                    text=True, env=dict(os.environ, KUBECONFIG=str(self.kubeconfig)))
            if result.returncode != 0:
                raise KubeError(f"kubectl apply -f manifests/{name}: {result.stderr.strip()}")
        account = yaml.safe_load((manifests / "serviceaccount.yaml").read_text())["metadata"]
        token = self.service_account_token(account["namespace"], account["name"])
        return self.write_kubeconfig(path or self.folder / "operator.kubeconfig", operator_user(), token)

    def audit_events(self) -> Iterator[dict]:
        if not self.audit_log.exists():
            return
        # Complete lines only: the API server may be writing the last one right now.
        complete = self.audit_log.read_text(errors="replace").rpartition("\n")[0]
        for line in complete.splitlines():
            if line.strip():
                yield json.loads(line)

    def forbidden(self, user: str) -> list[str]:
        """Every request of `user` that RBAC refused, as 'verb group/resource/subresource ns/name' lines.
        (A 403 that authorization allowed, such as a create in a terminating namespace, is no RBAC gap.)"""
        refused = []
        for event in self.audit_events():
            if (event.get("user") or {}).get("username") == user and \
                    (event.get("annotations") or {}).get("authorization.k8s.io/decision") == "forbid":
                ref = event.get("objectRef") or {}
                refused.append(f"{event.get('verb')} {ref.get('apiGroup', '')}/{ref.get('resource', '')}"
                               f"/{ref.get('subresource', '')} {ref.get('namespace', '')}/{ref.get('name', '')}")
        return refused


def serve(folder: Path, kubeconfig: Path | None = None, operator_kubeconfig: Path | None = None) -> None:
    """`modelarts-operator local kube --real`: run until SIGINT/SIGTERM, then stop every process.

    The operator's kubeconfig is written before the admin's, so a waiter on the admin kubeconfig
    finds both."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    admin = Path(kubeconfig) if kubeconfig else Path(folder) / "kubeconfig"
    admin.unlink(missing_ok=True)
    kube = RealKube(folder, kubeconfig=Path(folder) / "admin.kubeconfig", audited_users=(operator_user(),))
    try:
        kube.start()
        operator = kube.install_operator_identity(operator_kubeconfig)
        admin.parent.mkdir(parents=True, exist_ok=True)
        admin.write_bytes(kube.kubeconfig.read_bytes())
        admin.chmod(0o600)
        print(f"kube-apiserver at {kube.url}; KUBECONFIG={admin.resolve()} (admin), {operator.resolve()} "
              f"(the operator's ServiceAccount)", flush=True)
        while not stopping:
            for name, process in kube.processes.items():
                if process.poll() is not None:
                    raise KubeError(f"{name} exited with {process.returncode}:\n{kube.log_tail(name)}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        kube.stop()
