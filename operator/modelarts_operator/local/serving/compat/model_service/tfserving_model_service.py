"""`from model_service.tfserving_model_service import TfServingBaseService`, as on ModelArts."""

from modelarts_operator.local.serving.base import TfServingBaseService

__all__ = ["TfServingBaseService"]
