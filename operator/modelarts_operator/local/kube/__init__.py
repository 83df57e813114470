"""A focused in-memory Kubernetes API server for the local stack and the tests.

It serves the parts of the API that kubectl, Kopf and the `kubernetes` Python client use
(discovery, CRUD, patches, watches, CRDs with validation, server-side tables).
"""
