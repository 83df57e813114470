"""Inference code of the MNIST model package, for ModelArts real-time services.

Request: multipart/form-data with one to 16 image files in the `images` field (PNG, JPEG, BMP, also
GIF, TIFF, WebP, PNM; any colour mode or depth up to 16-bit and float, dark or light background, at
most 4096x4096 pixels each).
Response: {"predicted_label": "2", "scores": [["2", 0.998], ...]} with the five most likely digits;
for several files, the same object under each file name. File names must differ: the runtime
refuses a request naming two files alike (400 naming the duplicate), since one answer would hide
the other. Bad input of any kind (not a picture, too large, blank, NaN pixels, a JSON body of the
wrong shape) is a ValueError, which the runtime answers 400 MR.0101.
"""

import threading

import numpy as np
from model_service.tfserving_model_service import TfServingBaseService

try:  # ModelArts imports the package folder as a package; a plain `import` works when it is on sys.path
    from .image_preprocessing import image_to_input
except ImportError:
    from image_preprocessing import image_to_input

INPUT_NAME = "images"
OUTPUT_NAME = "scores"
TOP_K = 5
MAX_FILES = 16  # with at most 4096x4096 pixels each, bounds the time and memory of one request

# Requests may run in parallel threads: the file names travel from _preprocess to _postprocess per thread.
_request = threading.local()


class MnistService(TfServingBaseService):
    def _preprocess(self, data):
        if not isinstance(data, dict) or not data:
            raise ValueError("send the picture as multipart/form-data in the 'images' field")
        files = data.get(INPUT_NAME)
        if not isinstance(files, dict) or not files:
            fields = ", ".join(sorted(map(str, data))) or "none"
            raise ValueError(f"no file in the 'images' field (fields received: {fields})")
        if len(files) > MAX_FILES:
            raise ValueError(f"{len(files)} files in the 'images' field; send at most {MAX_FILES} per request")
        _request.filenames = list(files)
        rows = []
        for filename, file_obj in files.items():
            try:
                rows.append(image_to_input(file_obj))
            except ValueError as exc:
                raise ValueError(f"{filename}: {exc}") from None
        return {INPUT_NAME: np.stack(rows)}

    def _postprocess(self, data):
        results = [self._top_labels(scores) for scores in data[OUTPUT_NAME]]
        if len(results) == 1:
            return results[0]
        return dict(zip(_request.filenames, results))

    @staticmethod
    def _top_labels(scores):
        order = np.argsort(scores)[::-1][:TOP_K]
        return {
            "predicted_label": str(int(order[0])),
            "scores": [[str(int(i)), round(float(scores[i]), 3)] for i in order],
        }
