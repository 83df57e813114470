"""The `modelarts-operator` command line: one sub-command per job, each a thin wrapper."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from modelarts_operator.controller.main import run
    from modelarts_operator.controller.settings import Settings

    settings = Settings.from_env()
    for name in ("credentials_secret", "poll_fast_s", "poll_slow_s", "poll_terminal_s", "max_workers",
                 "peering_lifetime_s"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    if args.metrics_port is not None:
        settings.metrics_port = args.metrics_port
    if not args.namespace and not args.all_namespaces:
        raise SystemExit("modelarts-operator run: give --namespace NS (repeatable) or --all-namespaces")
    run(namespaces=args.namespace, all_namespaces=args.all_namespaces, standalone=args.standalone,
        peering=args.peering, liveness=args.liveness, settings=settings, verbose=args.verbose)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from modelarts_operator.local import demo, stack

    stack.exit_on_sigterm()  # so that the demo's `finally` stops the stack it started
    return demo.run(folder=Path(args.folder), keep=args.keep, image_index=args.image, kube=args.kube)


def _local_up(args: argparse.Namespace) -> int:
    from modelarts_operator.local.stack import Stack, StackError, exit_on_sigterm

    exit_on_sigterm()  # up stops what it started when it does not finish
    stack = Stack(folder=Path(args.folder), kube=args.kube)
    try:
        cloud = stack.up()
    except StackError as exc:
        print(f"local up failed: {exc}", file=sys.stderr)
        return 1
    print(f"local stack up: ModelArts {cloud['modelartsEndpoint']}, OBS {cloud['obsEndpoint']}")
    print(f"export KUBECONFIG={stack.kubeconfig.resolve()}   # namespace {stack.namespace}; logs in {args.folder}/logs")
    return 0


def _local_down(args: argparse.Namespace) -> int:
    from modelarts_operator.local.stack import Stack

    Stack(folder=Path(args.folder)).down()
    return 0


def _mnist_fetch(args: argparse.Namespace) -> int:
    from modelarts_operator import mnist

    files = mnist.fetch_mnist(args.dest)
    for name, path in files.items():
        print(f"{name}\t{path}")
    return 0


def _serve_model(args: argparse.Namespace) -> int:
    from modelarts_operator.local.serving import server

    server.serve(args.model_dir, host=args.host, port=args.port, model_name=args.model_name)
    return 0


def _local_cloud(args: argparse.Namespace) -> int:
    from modelarts_operator.local.cloud import main

    main.serve(state_dir=args.state_dir, endpoints_file=args.endpoints_file, max_running_jobs=args.max_running_jobs,
               ak=args.ak, sk=args.sk, project_id=args.project_id, region=args.region, max_nodes=args.max_nodes)
    return 0


def _local_kube(args: argparse.Namespace) -> int:
    if args.real:
        from modelarts_operator.local import realkube

        realkube.serve(Path(args.folder), kubeconfig=Path(args.kubeconfig),
                       operator_kubeconfig=Path(args.operator_kubeconfig))
        return 0
    from modelarts_operator.local.kube import server

    server.serve(host=args.host, port=args.port, kubeconfig=args.kubeconfig, state_file=args.state_file)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelarts-operator", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator (Kopf)")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("--standalone", action="store_true", help="no peering: for one replica without leader election")
    run.add_argument("--peering", default="modelarts-operator",
                     help="peering object for leader election between replicas (ClusterKopfPeering with "
                          "--all-namespaces, else a KopfPeering per namespace; created when missing; needs "
                          "manifests/peering.yaml)")
    run.add_argument("--peering-lifetime", dest="peering_lifetime_s", type=int, default=None,
                     help="seconds after its last keep-alive a dead leader is taken over (default 15)")
    run.add_argument("--liveness", default=None, help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--credentials-secret", default=None,
                     help="Secret used when a resource names none (default modelarts-credentials, in its namespace)")
    run.add_argument("--poll-fast", dest="poll_fast_s", type=float, default=None,
                     help="seconds between polls while something changes (default 5)")
    run.add_argument("--poll-slow", dest="poll_slow_s", type=float, default=None,
                     help="seconds between checks of a stable resource (default 300)")
    run.add_argument("--poll-terminal", dest="poll_terminal_s", type=float, default=None,
                     help="seconds between checks of a resource finished for good (default 3600)")
    run.add_argument("--max-workers", dest="max_workers", type=int, default=None,
                     help="reconciles and finalizers running at once, each in a thread (default 16)")
    run.add_argument("--metrics-port", dest="metrics_port", type=int, default=None,
                     help="serve Prometheus metrics at http://0.0.0.0:PORT/metrics (default 0: off)")
    run.set_defaults(func=_run)

    demo = commands.add_parser("demo", help="run the MNIST tutorial through the operator on the local stack")
    demo.add_argument("--keep", action="store_true", help="leave the stack and the resources running at the end")
    demo.add_argument("--folder", default=".local", help="where the stack keeps its files")
    demo.add_argument("--image", type=int, default=None, help="index of the MNIST test image to predict (random)")
    demo.add_argument("--kube", choices=("auto", "emulator", "real"), default="auto",
                      help="the Kubernetes API, as for `local up`")
    demo.set_defaults(func=_demo)

    mnist = commands.add_parser("mnist", help="MNIST data set tools").add_subparsers(dest="action", required=True)
    fetch = mnist.add_parser("fetch", help="fetch and verify the four MNIST files into a folder")
    fetch.add_argument("--dest", required=True, help="folder to write the .gz files into")
    fetch.set_defaults(func=_mnist_fetch)

    local = commands.add_parser("local", help="the local stack").add_subparsers(dest="action", required=True)
    up = local.add_parser("up", help="start the local cloud, local Kubernetes API (if no cluster) and the operator")
    up.add_argument("--folder", default=".local")
    up.add_argument("--kube", choices=("auto", "emulator", "real"), default="auto",
                    help="auto: your cluster if kubectl reaches one, else the emulator; real: etcd, kube-apiserver "
                         "and kube-controller-manager built by `make kube`; emulator: the local Kubernetes API")
    up.set_defaults(func=_local_up)
    down = local.add_parser("down", help="stop what `local up` started")
    down.add_argument("--folder", default=".local")
    down.set_defaults(func=_local_down)

    serve = local.add_parser("serve-model", help="serve a ModelArts model package over HTTP")
    serve.add_argument("--model-dir", required=True, help="the package folder (config.json, customize_service.py, SavedModel)")
    serve.add_argument("--model-name", default="model", help="name passed to the service class")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.set_defaults(func=_serve_model)

    cloud = local.add_parser("cloud", help="run the local cloud: OBS (moto) and the ModelArts emulator")
    cloud.add_argument("--state-dir", default=None, help="keep state here across restarts (default: memory only)")
    cloud.add_argument("--endpoints-file", default=".local/cloud.json",
                       help="where to write endpoints and credentials (mode 600)")
    cloud.add_argument("--max-running-jobs", type=int, default=1, help="training jobs running at once")
    cloud.add_argument("--max-nodes", type=int, default=4,
                       help="workers (processes) a training job may ask for with node_count (default 4)")
    cloud.add_argument("--ak", default=None, help="access key (default: random, or the state's)")
    cloud.add_argument("--sk", default=None, help="secret key (default: random, or the state's)")
    cloud.add_argument("--project-id", default=None, help="project id (default: random 32 hex)")
    cloud.add_argument("--region", default="cn-north-4")
    cloud.set_defaults(func=_local_cloud)

    kube = local.add_parser("kube", help="run the local Kubernetes API: the emulator, or a real control plane")
    kube.add_argument("--real", action="store_true",
                      help="etcd, kube-apiserver and kube-controller-manager (built by `make kube`) instead")
    kube.add_argument("--folder", default=".local/kube",
                      help="--real: where the control plane keeps its data, certificates and logs")
    kube.add_argument("--operator-kubeconfig", default=".local/operator.kubeconfig",
                      help="--real: kubeconfig for the operator's ServiceAccount (manifests/rbac.yaml)")
    kube.add_argument("--host", default="127.0.0.1")
    kube.add_argument("--port", type=int, default=0, help="0 picks a free port")
    kube.add_argument("--kubeconfig", default=".local/kubeconfig", help="where to write the kubeconfig")
    kube.add_argument("--state-file", default=None, help="persist objects here (default: memory only)")
    kube.set_defaults(func=_local_kube)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "run":  # Kopf configures logging for the operator itself
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING if args.command == "demo" else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
