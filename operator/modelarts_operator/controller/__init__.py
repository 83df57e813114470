"""The operator: reconcilers (plain functions over the cloud clients), status logic, Kopf wiring."""
