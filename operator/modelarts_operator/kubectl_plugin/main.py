"""The `kubectl-modelarts` command line: flags as kubectl has them, one sub-command per job, errors as one
line on stderr and a non-zero exit code (1: failed, 2: bad usage, 130: interrupted)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from modelarts_operator.kubectl_plugin.errors import PluginError

EXAMPLES = """examples:
  kubectl modelarts status                          the namespace's resources, from service to dataset
  kubectl modelarts predict mnist-service digit.png the predicted digit and the top scores
  kubectl modelarts logs mnist-train -f             the training log until the job has finished
"""


def cluster_flags(defaults: bool) -> argparse.ArgumentParser:
    """kubectl's flags, accepted before and after the sub-command (after: no default, so it overrides only
    when given)."""
    flags = argparse.ArgumentParser(add_help=False)
    default = None if defaults else argparse.SUPPRESS
    flags.add_argument("-n", "--namespace", default=default, help="the namespace (default: the context's, else default)")
    flags.add_argument("--context", default=default, help="the kubeconfig context to use (default: the current one)")
    flags.add_argument("--kubeconfig", default=default, help="the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    return flags


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="kubectl modelarts", parents=[cluster_flags(True)], epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   description="Predict, follow training logs and see the ModelArts resources.")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    after = [cluster_flags(False)]

    predict = commands.add_parser("predict", parents=after, help="send pictures to a ModelArtsService")
    predict.add_argument("service", metavar="SERVICE")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="a picture file (PNG, JPEG, ...)")
    predict.add_argument("-o", "--output", choices=("text", "json"), default="text")
    predict.add_argument("--top", type=int, default=3, help="how many labels to show with their scores (default 3)")

    logs = commands.add_parser("logs", parents=after, help="a TrainingJob's log from ModelArts")
    logs.add_argument("job", metavar="TRAININGJOB")
    logs.add_argument("-f", "--follow", action="store_true", help="print new text until the job has finished")
    logs.add_argument("--task", default="worker-0", help="the task whose log to read (default worker-0)")
    logs.add_argument("--interval", type=float, default=2.0, help="seconds between polls with -f (default 2)")

    status = commands.add_parser("status", parents=after, help="the resources as trees, with their state")
    status.add_argument("name", metavar="SERVICE", nargs="?", help="only the tree of this ModelArtsService")
    status.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return main


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from modelarts_operator.kubectl_plugin.kube import Cluster

    cluster = Cluster.connect(args.kubeconfig, args.context, args.namespace)
    if args.command == "predict":
        from modelarts_operator.kubectl_plugin import predict

        return predict.run(cluster, args.service, args.images, args.output, args.top, out, err)
    if args.command == "logs":
        from modelarts_operator.kubectl_plugin import logs

        return logs.run(cluster, args.job, args.follow, args.task, args.interval, out, err)
    return show_status(cluster, args.name, args.output, out)


def show_status(cluster, name: str | None, output: str, out: TextIO) -> int:
    from modelarts_operator.api.kinds import SERVICE
    from modelarts_operator.kubectl_plugin import tree

    if name is not None:
        cluster.get(SERVICE, name)  # a clear "not found" before the tree
    trees = tree.build_trees(cluster.list_all(), (SERVICE.kind, name) if name else None)
    if output == "json":
        print(json.dumps([tree.as_dict(t) for t in trees], indent=2), file=out)
    elif trees:
        print(tree.render(trees), file=out)
    else:
        print(f'no ModelArts resources in namespace "{cluster.namespace}"', file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    from modelarts_operator.cloud import CloudError

    args = parser().parse_args(argv)
    try:
        return run(args, sys.stdout, sys.stderr)
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except CloudError as exc:  # the cloud's code and message, never the credentials
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C, above all while following a log: no traceback
        return 130
    except BrokenPipeError:  # `| head` closed the pipe: nothing left to say
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
