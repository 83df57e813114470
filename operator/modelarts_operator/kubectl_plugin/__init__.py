"""`kubectl modelarts`: predict with a service, follow a training job's log, and show the resources as a tree.

A kubectl plugin is any executable named `kubectl-<name>` on PATH: the console script `kubectl-modelarts`
(`main.main`). It reads the cluster through the `kubernetes` client as kubectl would (kubeconfig, context,
namespace) and the cloud through the operator's own clients (`cloud/`), with the credentials Secret the
resource names. It never imports the local stack or TensorFlow: the operator image has neither.
"""
