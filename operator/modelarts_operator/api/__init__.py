"""The custom resources' API types: Pydantic models that are the single source of the CRD schemas."""
