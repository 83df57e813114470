"""Local runtime for ModelArts model packages: validate a package, load its customize_service.py, serve it.

Packages written for ModelArts import `model_service.tfserving_model_service.TfServingBaseService`;
`compat/` provides that import path, backed by `base.TfServingBaseService`.
"""
