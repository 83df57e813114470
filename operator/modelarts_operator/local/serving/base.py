"""TfServingBaseService: the base class ModelArts inference code subclasses, backed by TensorFlow in-process.

ModelArts runs `_preprocess` -> `_inference` -> `_postprocess`; `_inference` feeds the SavedModel
signature and returns its outputs as lists. Here the SavedModel is loaded once and its signature
function is called directly: no per-request graph building, no `model.predict()`.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"


class TfServingBaseService:
    def __init__(self, model_name, model_path):
        import tensorflow as tf  # lazy: importing this module must stay cheap

        self.model_name = model_name
        self.model_path = model_path
        self._tf = tf
        self._saved_model = tf.saved_model.load(str(model_path))  # holds the variables the signature uses
        signatures = self._saved_model.signatures
        if not signatures:
            raise ValueError(f"the SavedModel in {model_path} has no serving signature")
        self.model_signature = DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in signatures else sorted(signatures)[0]
        self._signature = signatures[self.model_signature]
        self.model_inputs = dict(self._signature.structured_input_signature[1])
        self.model_outputs = dict(self._signature.structured_outputs)
        log.info(
            "model %s loaded: signature %s, inputs %s, outputs %s",
            model_name, self.model_signature, sorted(self.model_inputs), sorted(self.model_outputs),
        )

    def inference(self, data):
        return self._postprocess(self._inference(self._preprocess(data)))

    def ping(self):
        return

    def signature(self):
        return {
            "signature_name": self.model_signature,
            "inputs": {name: _describe(spec) for name, spec in self.model_inputs.items()},
            "outputs": {name: _describe(spec) for name, spec in self.model_outputs.items()},
        }

    def _preprocess(self, data):
        return data

    def _inference(self, data):
        """Feed each signature input from `data`; a missing input or a wrong shape is the caller's error."""
        if not isinstance(data, dict):
            raise ValueError(f"model inputs must be a mapping of {sorted(self.model_inputs)}, got {type(data).__name__}")
        missing = sorted(set(self.model_inputs) - set(data))
        if missing:
            raise ValueError(f"missing model input(s) {missing}; the signature takes {sorted(self.model_inputs)}")
        feeds = {}
        for name, spec in self.model_inputs.items():
            try:
                value = np.asarray(data[name], dtype=spec.dtype.as_numpy_dtype)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"input {name!r} is not convertible to {spec.dtype.name}: {exc}") from None
            if not spec.shape.is_compatible_with(value.shape):
                raise ValueError(f"input {name!r} has shape {list(value.shape)}, the model takes {spec.shape.as_list()}")
            if value.dtype.kind in "fc" and not np.isfinite(value).all():  # NaN in, a confident guess out
                raise ValueError(f"input {name!r} holds NaN or infinite values")
            feeds[name] = self._tf.constant(value)
        outputs = self._signature(**feeds)
        return {name: tensor.numpy().tolist() for name, tensor in outputs.items()}

    def _postprocess(self, data):
        return data


def _describe(spec) -> dict:
    return {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
