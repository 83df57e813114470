"""The import path ModelArts inference code expects (`model_service.tfserving_model_service`)."""
