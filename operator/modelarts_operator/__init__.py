"""Kubernetes operator for the Huawei Cloud ModelArts custom-algorithm workflow."""
__version__ = "0.1.0"
