"""The model-package runtime: load the trained package, serve it over HTTP, predict real digits."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from modelarts_operator.local.serving.loader import load_model_service
from modelarts_operator.local.serving.server import build_app

pytestmark = pytest.mark.slow


def encode(pixels: np.ndarray, fmt: str, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def service(model_package):
    return load_model_service(model_package, "mnist")


@pytest.fixture
async def client(service):
    async with TestClient(TestServer(build_app(service))) as client:
        yield client


async def predict(client, content: bytes, filename: str = "digit.png"):
    form = FormData()
    form.add_field("images", content, filename=filename)
    response = await client.post("/", data=form)
    return response.status, await response.json()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
async def test_predicts_95_of_100_real_test_images(client, test_set, fmt):
    images, labels = test_set
    correct = 0
    for pixels, label in zip(images, labels):
        status, body = await predict(client, encode(pixels, fmt), f"digit.{fmt.lower()}")
        assert status == 200, body
        assert len(body["scores"]) == 5
        assert body["scores"][0][0] == body["predicted_label"]
        correct += body["predicted_label"] == str(label)
    assert correct >= 95


def paper_style(pixels: np.ndarray) -> np.ndarray:
    """Dark ink on white paper, 5x larger, off-centre in a wide picture: nothing like MNIST's framing."""
    big = np.asarray(Image.fromarray(pixels).resize((140, 140), Image.BILINEAR))
    canvas = np.zeros((200, 320), dtype=np.uint8)
    canvas[40:180, 150:290] = big
    return 255 - canvas


async def test_any_size_colour_and_background(client, test_set):
    images, labels = test_set
    variants = {
        "grey-on-white JPEG": lambda p: encode(paper_style(p), "JPEG"),
        "RGB BMP": lambda p: encode(paper_style(p), "BMP", "RGB"),
        "blue ink PNG": lambda p: encode(
            np.stack([paper_style(p), paper_style(p), np.full_like(paper_style(p), 255)], axis=-1), "PNG", "RGB"
        ),
        "transparent PNG": lambda p: encode(
            np.stack([np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), p], axis=-1), "PNG", "RGBA"
        ),
    }
    for name, make in variants.items():
        correct = 0
        for pixels, label in zip(images[:40], labels[:40]):
            status, body = await predict(client, make(pixels))
            assert status == 200, (name, body)
            correct += body["predicted_label"] == str(label)
        assert correct >= 36, f"{name}: {correct}/40"


async def test_several_files_answer_per_file(client, test_set):
    images, labels = test_set
    form = FormData()
    form.add_field("images", encode(images[0], "PNG"), filename="a.png")
    form.add_field("images", encode(images[1], "PNG"), filename="b.png")
    response = await client.post("/", data=form)
    body = await response.json()
    assert response.status == 200
    assert body["a.png"]["predicted_label"] == str(labels[0])
    assert body["b.png"]["predicted_label"] == str(labels[1])


async def test_bad_inputs_get_clear_400s(client):
    status, body = await predict(client, b"%PDF-1.4 definitely not a picture", "scan.pdf")
    assert status == 400
    assert body["error_code"] == "MR.0101"
    assert body["error_msg"].startswith("scan.pdf: the uploaded file is not a readable image")
    status, body = await predict(client, encode(np.zeros((28, 28), np.uint8), "PNG"))
    assert (status, body["error_msg"]) == (400, "digit.png: the image is blank: no digit found")
    form = FormData()
    form.add_field("photo", b"x", filename="x.png")
    response = await client.post("/", data=form)
    assert response.status == 400
    assert (await response.json())["error_msg"] == "no file in the 'images' field (fields received: photo)"
    response = await client.post("/", data="{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["error_msg"].startswith("the body is not valid JSON")
    response = await client.post("/", data=b"x", headers={"Content-Type": "text/plain"})
    assert response.status == 400
    response = await client.post("/", data=b"x" * (13 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["error_code"] == "MR.0101"


def test_base_class_feeds_the_signature_and_checks_shapes(service, test_set):
    images, labels = test_set
    rows = images[:3].reshape(3, 784).astype(np.float32) / 255.0
    outputs = service._inference({"images": rows.tolist()})
    assert np.argmax(outputs["scores"], axis=1).tolist() == labels[:3].tolist()
    with pytest.raises(ValueError, match=r"input 'images' has shape \[3, 10\], the model takes \[None, 784\]"):
        service._inference({"images": np.zeros((3, 10))})
    with pytest.raises(ValueError, match=r"missing model input\(s\) \['images'\]"):
        service._inference({"pixels": rows})
    assert service.signature()["inputs"] == {"images": {"dtype": "float32", "shape": [None, 784]}}


TUTORIAL_STYLE_SERVICE = '''
import numpy as np
from PIL import Image
from model_service.tfserving_model_service import TfServingBaseService


class mnist_service(TfServingBaseService):
    """Written the way the ModelArts tutorial writes it: PIL -> (1, 784) floats, argmax of scores[0]."""

    def _preprocess(self, data):
        out = {}
        for field, files in data.items():
            for _, content in files.items():
                pixels = np.array(Image.open(content), dtype=np.float32) / 255.0
                out[field] = pixels.reshape(1, 784)
        return out

    def _postprocess(self, data):
        scores = data["scores"][0]
        return {"mnist_result": scores.index(max(scores))}
'''


async def test_tutorial_style_inference_code_runs_on_the_package(model_package, tmp_path, test_set):
    images, labels = test_set
    package = tmp_path / "model"
    shutil.copytree(model_package, package)
    (package / "customize_service.py").write_text(TUTORIAL_STYLE_SERVICE)
    service = load_model_service(package, "tutorial")
    async with TestClient(TestServer(build_app(service))) as client:
        status, body = await predict(client, encode(images[0], "PNG"))
    assert (status, body) == (200, {"mnist_result": int(labels[0])})


def test_cli_serves_a_package(model_package, test_set):
    """`modelarts-operator local serve-model` in its own process, as the local cloud starts it."""
    images, labels = test_set
    process = subprocess.Popen(
        [sys.executable, "-m", "modelarts_operator.cli", "local", "serve-model",
         "--model-dir", str(model_package), "--port", "0"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    try:
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith("READY ") and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, "server exited before it was ready"
        url = line.split()[1]
        boundary = "xyzBOUNDARYxyz"
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n".encode() + encode(images[2], "PNG") + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            url + "/", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["predicted_label"] == str(labels[2])
        with urllib.request.urlopen(url + "/health", timeout=30) as response:
            assert json.load(response)["status"] == "ok"
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
