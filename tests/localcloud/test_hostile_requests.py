"""Hostile prediction requests: whatever arrives (malformed, truncated, fuzzed, hostile), the model
runtime and the API gateway in front of it answer 4xx with a message: never a 5xx, a hang or a crash.

A tiny SavedModel (one dense layer, not trained) behind the real MNIST inference code keeps this
fast. Hypothesis builds the bodies, headers and multipart structures (derandomized: the same
requests every run); hostile_corpus.py builds the files. Every request is tallied, and the tally
(tried, 4xx, 5xx) is printed when the module ends.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import hashlib
import http.client
import json
import resource
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from localcloud.cloudkit import BUCKET, Harness, signed_request
from localcloud.hostile_corpus import deep_images, hostile_files, paper_style
from localcloud.test_serving import import_model, services_path, wait_model, wait_service

from modelarts_operator import data
from modelarts_operator.local.cloud import LocalCloud
from modelarts_operator.local.cloud import api as gateway_api
from modelarts_operator.local.serving.loader import load_model_service
from modelarts_operator.local.serving.server import Limits, build_app, start

pytestmark = [  # what Pillow and aiohttp say about the files and forms they then refuse
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore::aiohttp.multipart.BadContentDispositionHeader"),
    pytest.mark.filterwarnings("ignore:Tag data larger than file:UserWarning"),
]

HOSTILE = hostile_files()
DEEP = deep_images()
GOOD_PNG = DEEP["grey-8bit.png"]
BOMBS = [name for name in HOSTILE if "bomb" in name]
FAST_TIMEOUT_S = 1.0  # read and idle timeouts of the servers under test


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


TALLY: collections.Counter = collections.Counter()


# -- servers and a raw HTTP client -----------------------------------------------------------------


def write_tiny_package(folder: Path) -> Path:
    """A model package with the MNIST signature (images [None, 784] -> scores [None, 10]), untrained."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.random.default_rng(0).normal(0, 0.1, (784, 10)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="images")])
        def predict(self, images):
            return {"scores": tf.nn.softmax(tf.matmul(images, self.w))}

    module = Tiny()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.predict.get_concrete_function()})
    for item in (data.model_code() / "model").iterdir():
        if item.suffix in (".py", ".json"):
            shutil.copy2(item, folder / item.name)
    return folder


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory) -> Path:
    return write_tiny_package(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def runtime(tiny_package):
    """The runtime serving the tiny package on a real port, from an event loop in a thread."""
    service = load_model_service(tiny_package, "tiny")
    limits = Limits(read_timeout_s=FAST_TIMEOUT_S, idle_timeout_s=FAST_TIMEOUT_S)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, port = asyncio.run_coroutine_threadsafe(start(build_app(service, limits=limits), "127.0.0.1", 0), loop).result(60)
    yield port

    async def stop() -> None:
        await runner.cleanup()
        lingering = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in lingering:  # connections still draining what half-open clients never sent
            task.cancel()
        await asyncio.gather(*lingering, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture(scope="module")
def gateway(tiny_package):
    """A local cloud with fast timeouts, serving the tiny package: (cloud, its port, the predict path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gateway_api, "READ_TIMEOUT_S", FAST_TIMEOUT_S)
        patch.setattr(gateway_api, "IDLE_TIMEOUT_S", FAST_TIMEOUT_S)
        with LocalCloud() as cloud:
            harness = Harness(cloud)
            harness.upload_dir(tiny_package, "tiny/model/")
            model_id = import_model(harness, "tiny", f"/{BUCKET}/tiny")
            assert wait_model(harness, model_id)["model_status"] == "published"
            status, created = harness.v1("POST", services_path(harness), {
                "service_name": "tiny", "infer_type": "real-time",
                "config": [{"model_id": model_id, "specification": "modelarts.vm.cpu.2u", "instance_count": 1}],
            })
            assert status == 200, created
            service = wait_service(harness, created["service_id"], {"running", "failed"})
            assert service["status"] == "running", service.get("error_msg")
            yield cloud, int(cloud.modelarts_endpoint.rsplit(":", 1)[1]), f"/v1/infers/{created['service_id']}"


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    line = (f"\nhostile requests: {TALLY['tried']} tried, {TALLY['4xx']} answered 4xx, {TALLY['5xx']} answered 5xx, "
            f"{TALLY['closed']} closed unanswered (incomplete headers), {TALLY['2xx']} answered 2xx (valid pictures the fuzzer built)")
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(line)


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes
    seconds: float

    def error(self) -> dict:
        return json.loads(self.body) if self.content_type == "application/json" else {}


def send(port: int, headers: list[bytes], body: bytes = b"", path: str = "/", chunked: bool = False) -> Answer:
    """One raw HTTP/1.1 POST (any header bytes at all), tallied; the connection must bring an answer."""
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
    payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked and body else b"0\r\n\r\n" if chunked else body
    head = b"\r\n".join([b"POST %s HTTP/1.1" % path.encode(), b"Host: 127.0.0.1", b"Connection: close", framing, *headers])
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(head + b"\r\n\r\n" + payload)
        except (BrokenPipeError, ConnectionResetError):  # answered before the whole body was read
            pass
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = Answer(response.status, response.headers.get_content_type(), response.read(), time.perf_counter() - started)
    TALLY["tried"] += 1
    TALLY[f"{answer.status // 100}xx"] += 1
    return answer


def assert_refused(answer: Answer, *codes: str) -> dict:
    """A 4xx with a message: ModelArts' JSON error body, or aiohttp's plain-text 400 for broken HTTP."""
    assert 400 <= answer.status < 500, (answer.status, answer.body[:300])
    if answer.content_type != "application/json":
        assert answer.status == 400 and answer.body, answer
        return {}
    body = answer.error()
    assert body["error_msg"] and (body["error_code"] in codes if codes else body["error_code"]), body
    return body


def assert_answered(answer: Answer) -> None:
    assert answer.status < 500, (answer.status, answer.body[:300])
    if answer.status >= 400:
        assert_refused(answer)


def multipart(*parts: tuple[str, str | None, bytes], boundary: str = "hostileBoundary") -> tuple[bytes, bytes]:
    """(body, Content-Type header line) for well-formed form parts (field, filename, content)."""
    chunks = []
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename is not None else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, f"Content-Type: multipart/form-data; boundary={boundary}".encode()


def post_files(port: int, *files: tuple[str, bytes], path: str = "/", headers: tuple[bytes, ...] = ()) -> Answer:
    body, content_type = multipart(*[("images", name, content) for name, content in files])
    return send(port, [content_type, *headers], body, path)


# -- the runtime -----------------------------------------------------------------------------------


def test_hostile_files_are_refused_with_a_message(runtime):
    for name, content in HOSTILE.items():
        body = assert_refused(post_files(runtime, (name, content)), "MR.0101")
        assert body["error_msg"].startswith(f"{name}: "), body


def test_bombs_are_refused_before_decoding(runtime):
    """13000x13000 in 23 KB decoded to 169 million pixels: seconds and gigabytes. Now the header is enough."""
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name in BOMBS:
        answer = post_files(runtime, (name, HOSTILE[name]))
        assert_refused(answer, "MR.0101")
        assert answer.seconds < 0.5, (name, answer.seconds)
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert growth_mb < 64, f"the peak memory grew by {growth_mb:.0f} MB"


def scores(answer: Answer) -> dict[str, float]:
    assert answer.status == 200, answer.body[:300]
    return dict(json.loads(answer.body)["scores"])


def test_every_depth_and_mode_is_rescaled_not_clipped(runtime):
    reference = scores(post_files(runtime, ("grey-8bit.png", GOOD_PNG)))
    lossy = {"cmyk.jpg", "lab.tiff", "ycbcr.tiff"}  # their colour conversions round
    for name, content in DEEP.items():
        assert_close(scores(post_files(runtime, (name, content))), reference, 0.05 if name in lossy else 1e-3, name)
    # a 2240x2240 picture is box-reduced before its ink is measured: it reads like a 224x224 one
    medium = scores(post_files(runtime, ("medium.png", paper_style(8))))
    assert_close(scores(post_files(runtime, ("big.png", paper_style(80)))), medium, 0.05, "big.png")


def assert_close(got: dict, reference: dict, tolerance: float, name: str) -> None:
    assert got.keys() == reference.keys(), name
    assert all(abs(got[k] - reference[k]) <= tolerance for k in got), (name, got, reference)


def test_duplicate_file_names_are_refused_distinct_ones_answered_per_file(runtime):
    body = assert_refused(post_files(runtime, ("a.png", GOOD_PNG), ("a.png", DEEP["one-bit.png"])))
    assert "'a.png'" in body["error_msg"], body
    answer = post_files(runtime, ("a.png", GOOD_PNG), ("b.png", GOOD_PNG))
    assert answer.status == 200 and set(json.loads(answer.body)) == {"a.png", "b.png"}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_the_base_class_refuses_non_finite_inputs(tiny_package):
    service = load_model_service(tiny_package, "tiny")
    for bad in (np.nan, np.inf, 1e39):  # 1e39 overflows float32 to inf
        rows = np.full((1, 784), 0.5)
        rows[0, 3] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            service._inference({"images": rows.tolist()})


def test_json_of_any_shape_is_refused(runtime):
    for document in [b"[" * 100_000 + b"]" * 100_000, b'{"images": NaN}', b'{"images": {"a.png": 5}}',
                     b'{"images": {"a.png": [1, 2]}}', b'{"images": [[0.5]]}', b"\xff\xfe{", b'"text"', b"null"]:
        assert_refused(send(runtime, [b"Content-Type: application/json"], document), "MR.0101")


def test_request_bounds(runtime):
    assert_refused(send(runtime, [b"Content-Type: application/json"], b"0" * (12 * 1024 * 1024 + 1)), "MR.0101")
    many = [(f"{i}.png", GOOD_PNG) for i in range(17)]
    assert "at most 16" in assert_refused(post_files(runtime, *many))["error_msg"]
    fields, content_type = multipart(*[(f"f{i}", None, b"x") for i in range(65)])
    assert_refused(send(runtime, [content_type], fields))
    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024), compresslevel=1)
    answer = send(runtime, [b"Content-Type: application/json", b"Content-Encoding: gzip"], bomb)
    assert answer.status == 413 and answer.seconds < 5, answer


async def test_processing_beyond_its_time_bound_is_refused(tiny_package):
    service = load_model_service(tiny_package, "tiny")
    async with TestClient(TestServer(build_app(service, limits=Limits(inference_timeout_s=1e-6)))) as client:
        form = FormData()
        form.add_field("images", GOOD_PNG, filename="d.png")
        response = await client.post("/", data=form)
        TALLY.update(["tried", f"{response.status // 100}xx"])
        assert response.status == 413 and "took more than" in (await response.json())["error_msg"]


def half_open(port: int, partial: bytes) -> tuple[bytes, float]:
    """Send part of a request, then nothing: the answer's head (b"" if the server just closes), and when."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(partial)
        received = b""
        while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
            received += chunk
    TALLY.update(["tried", "4xx" if received.startswith(b"HTTP/1.1 4") else "closed" if not received else "other"])
    return received, time.perf_counter() - started


@pytest.mark.parametrize("where", ["runtime", "gateway"])
def test_half_open_requests_time_out(where, request):
    target = request.getfixturevalue(where)
    port, path = (target, "/") if where == "runtime" else (target[1], target[2])
    token = b"" if where == "runtime" else b"X-Auth-Token: " + target[0].auth_token.encode() + b"\r\n"
    head = b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" % (path.encode(), token)
    received, seconds = half_open(port, head + b'{"images": ')
    assert received.startswith(b"HTTP/1.1 408 ") and seconds < FAST_TIMEOUT_S + 3, (received[:200], seconds)
    received, seconds = half_open(port, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Ty" % path.encode())
    assert received == b"" and seconds < FAST_TIMEOUT_S + 3, (received[:200], seconds)


# -- fuzzing: bodies, headers and multipart structure ----------------------------------------------

PAYLOADS = st.one_of(
    st.sampled_from(sorted(HOSTILE.values()) + sorted(DEEP.values())),
    st.binary(max_size=300),
    st.integers(0, len(GOOD_PNG)).map(lambda cut: GOOD_PNG[:cut]),
    st.tuples(st.integers(0, len(GOOD_PNG) - 1), st.integers(1, 255)).map(
        lambda flip: GOOD_PNG[: flip[0]] + bytes([GOOD_PNG[flip[0]] ^ flip[1]]) + GOOD_PNG[flip[0] + 1 :]),
)


def mutate(picture: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    data = bytearray(picture)
    for position, bits in flips:
        data[position % len(data)] ^= bits
    return bytes(data if cut is None else data[: cut % (len(data) + 1)])


PICTURES = PAYLOADS | st.builds(  # real pictures of every mode and format with bytes flipped, cut short, or both
    mutate, st.sampled_from(sorted(DEEP.values())),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=8), st.none() | st.integers(0, 1 << 20),
)
TEXT = st.text(max_size=12).map(str.encode)
PART_HEADERS = st.sampled_from([
    b"Content-Type: image/png", b"Content-Type: text/plain; charset=no-such-charset", b"Content-Type: text/plain; charset=utf-16",
    b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable", b"Content-Transfer-Encoding: x-uue",
    b"Content-Encoding: gzip", b"Content-Type: multipart/mixed; boundary=inner", b"X-Junk: \xff\xfe\x00", b"Content-Length: 3",
])
NAMES = st.sampled_from([b"images", b"images", b"photo", b"", b'im"ages', b"_charset_"]) | TEXT
FILENAMES = st.none() | st.sampled_from([b"a.png", b"a.png", b"b.png", b"", b"../../x.png", b"\xff.png"]) | TEXT
HOSTILE_PARTS = st.tuples(
    st.tuples(NAMES, FILENAMES).map(lambda nf: b'form-data; name="%s"' % nf[0] + (b'; filename="%s"' % nf[1] if nf[1] is not None else b""))
    | st.sampled_from([b"form-data", b"attachment; filename=a.png", b'form-data; name="images; filename="a.png"', b"\xff"]),
    st.lists(PART_HEADERS, max_size=2),
    PAYLOADS,
)
IMAGE_PARTS = st.tuples(  # well-formed, so that the pictures reach the decoder
    st.sampled_from([b"a.png", b"b.png", b"c.png", b"d.jpg"]).map(lambda name: b'form-data; name="images"; filename="%s"' % name),
    st.sampled_from([[], [b"Content-Type: image/png"]]),
    PAYLOADS,
)
BOUNDARY = b"hostileBoundary"


@st.composite
def multipart_requests(draw) -> tuple[list[bytes], bytes]:
    """Mostly well-formed forms of hostile pictures; sometimes a broken structure, boundary or ending."""
    broken = draw(st.integers(0, 3)) == 0
    boundary = draw(st.sampled_from([b"x" * 71, b"b\xc3\xb8undary", b"a b", b'"q"', b"-"])) if broken else BOUNDARY
    parts = draw(st.lists(HOSTILE_PARTS if broken else IMAGE_PARTS | IMAGE_PARTS | HOSTILE_PARTS, max_size=4))
    body = b"".join(b"--%s\r\nContent-Disposition: %s\r\n%s\r\n%s\r\n" % (boundary, disposition, b"".join(h + b"\r\n" for h in headers), payload)
                    for disposition, headers, payload in parts)
    body += draw(st.sampled_from([b"--%s" % boundary, b"", b"--other--\r\n"])) if broken else b"--%s--\r\n" % boundary
    if broken and draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    declared = draw(st.sampled_from([boundary, b"other", b"", b'"%s"' % boundary])) if broken else boundary
    content_type = draw(st.sampled_from([b"multipart/form-data; boundary=%s" % declared, b"multipart/form-data",
                                         b"multipart/mixed; boundary=%s" % declared])) if broken else b"multipart/form-data; boundary=%s" % boundary
    return [b"Content-Type: " + content_type], body


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20,
)
JSON_DOCUMENTS = st.one_of(
    JSON_VALUES, st.fixed_dictionaries({"images": JSON_VALUES}),
    st.fixed_dictionaries({"images": st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3)}),
).map(lambda value: json.dumps(value).encode())


@st.composite
def json_requests(draw) -> tuple[list[bytes], bytes]:
    body = draw(JSON_DOCUMENTS | st.binary(max_size=200))
    charset = draw(st.sampled_from([b"", b"; charset=utf-8", b"; charset=utf-16", b"; charset=no-such-charset"]))
    return [b"Content-Type: application/json" + charset], body


@st.composite
def other_requests(draw) -> tuple[list[bytes], bytes]:
    content_type = draw(st.sampled_from([b"text/plain", b"image/png", b"application/x-www-form-urlencoded", b"", b"\xff\xfe", b"*/*"]))
    return [b"Content-Type: " + content_type], draw(st.binary(max_size=300) | st.sampled_from([GOOD_PNG]))


REQUESTS = st.one_of(multipart_requests(), multipart_requests(), json_requests(), other_requests())
EXTRA_HEADERS = st.just([]) | st.lists(st.sampled_from([
    b"Content-Encoding: gzip", b"Content-Encoding: br", b"Content-Encoding: no-such-coding", b"Expect: 100-continue",
    b"X-Junk: \xc3\x28\xff", b"Accept: \xff",
]), max_size=2)


@fuzz(300)
@given(pictures=st.lists(PICTURES, min_size=1, max_size=3))
def test_fuzzed_pictures_never_get_a_5xx_from_the_runtime(runtime, pictures):
    assert_answered(post_files(runtime, *[(f"{i}.png", picture) for i, picture in enumerate(pictures)]))


@fuzz(300)
@given(request=REQUESTS, extra=EXTRA_HEADERS, chunked=st.booleans())
def test_fuzzed_requests_never_get_a_5xx_from_the_runtime(runtime, request, extra, chunked):
    headers, body = request
    assert_answered(send(runtime, [*headers, *extra], body, chunked=chunked))


# -- the gateway -----------------------------------------------------------------------------------

TOKENS = st.one_of(
    st.sampled_from([b"\xff\xfe\xfd", b"\xc3\x28", b"garbage", b"", b"\x00"]),
    st.binary(max_size=40).filter(lambda token: b"\r" not in token and b"\n" not in token),
)
AUTHORIZATIONS = st.one_of(
    st.sampled_from([
        b"SDK-HMAC-SHA256", b"SDK-HMAC-SHA256 Access=", b"Basic Zm9vOmJhcg==", b"\xff\xfe",
        b"SDK-HMAC-SHA256 Access=\xff, SignedHeaders=x-sdk-date, Signature=00",
        b"SDK-HMAC-SHA256 Access=AK, SignedHeaders=x-sdk-date, Signature=zz",
        b"SDK-HMAC-SHA256 Access=AK, SignedHeaders=;;;, Signature=" + b"0" * 64,
    ]),
    st.binary(max_size=80).filter(lambda value: b"\r" not in value and b"\n" not in value),
)


def signed_by_us(cloud, headers: list[bytes]) -> list[bytes]:
    """Our access key (the signature is wrong): the request gets as far as the signature check."""
    return [b"Authorization: SDK-HMAC-SHA256 Access=" + cloud.ak.encode() + b", SignedHeaders=x-sdk-date;x-junk, Signature=" + b"0" * 64,
            b"X-Sdk-Date: " + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()).encode(), *headers]


def test_malformed_credentials_get_401(gateway):
    cloud, port, path = gateway
    cases = [[b"X-Auth-Token: " + token] for token in (b"\xff\xfe\xfd", b"\xc3\x28", b"garbage", b"", cloud.auth_token.encode() + b"\xff")]
    cases += [[b"Authorization: " + value] for value in (b"garbage", b"SDK-HMAC-SHA256", b"\xff\xfe", b"Basic Zm9vOmJhcg==")]
    cases += [signed_by_us(cloud, [b"X-Junk: \xff\xfe"]), signed_by_us(cloud, [b"X-Junk: ok", b"X-Sdk-Date: \xff"])]
    for headers in cases:
        body = assert_refused(post_files(port, ("d.png", GOOD_PNG), path=path, headers=tuple(headers)), "APIGW.0301")
        assert "Incorrect IAM authentication information" in body["error_msg"] and cloud.auth_token not in body["error_msg"]


def test_the_body_hash_header_is_checked_against_the_body(gateway):
    cloud, _, path = gateway
    signed = json.dumps({"images": "signed"}).encode()
    declared = {"X-Sdk-Content-Sha256": hashlib.sha256(signed).hexdigest()}
    status, _, raw = signed_request(cloud, "POST", path, signed, declared)
    assert (status, json.loads(raw)["error_code"]) == (400, "MR.0101")  # through the gateway, refused by the model
    for forged, expected in [(signed.replace(b"signed", b"forged"), declared), (signed, {"X-Sdk-Content-Sha256": "zz"})]:
        status, _, raw = signed_request(cloud, "POST", path, signed, expected, send_body=forged)
        TALLY.update(["tried", f"{status // 100}xx"])
        body = json.loads(raw)
        assert (status, body["error_code"]) == (401, "APIGW.0301") and "X-Sdk-Content-Sha256" in body["error_msg"], body
    body, content_type = multipart(("images", "d.png", GOOD_PNG))
    status, _, raw = signed_request(cloud, "POST", path, body, {"Content-Type": content_type.split(b": ", 1)[1].decode()})
    assert status == 200, raw  # the SDK signs multipart bodies as UNSIGNED-PAYLOAD


def test_hostile_files_through_the_gateway(gateway):
    cloud, port, path = gateway
    token = b"X-Auth-Token: " + cloud.auth_token.encode()
    for name, content in HOSTILE.items():
        assert_refused(post_files(port, (name, content), path=path, headers=(token,)), "MR.0101")
    assert_refused(send(port, [token, b"Content-Type: \xff/\xfe"], GOOD_PNG, path))
    assert_refused(send(port, [token, b"Content-Type: application/json"], b"0" * (12 * 1024 * 1024 + 1), path), "APIGW.0201")
    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024), compresslevel=1)
    answer = send(port, [token, b"Content-Type: application/json", b"Content-Encoding: gzip"], bomb, path)
    assert answer.status == 413 and answer.seconds < 5, answer


@fuzz(200)
@given(request=REQUESTS, extra=EXTRA_HEADERS, chunked=st.booleans(), token=st.none() | TOKENS | st.just(b"valid"),
       authorization=st.none() | AUTHORIZATIONS, content_hash=st.none() | st.sampled_from([b"UNSIGNED-PAYLOAD", b"zz", b"0" * 64, b"\xff"]))
def test_fuzzed_requests_never_get_a_5xx_from_the_gateway(gateway, request, extra, chunked, token, authorization, content_hash):
    cloud, port, path = gateway
    headers, body = [*request[0], *extra], request[1]
    if token is not None:
        headers.append(b"X-Auth-Token: " + (cloud.auth_token.encode() if token == b"valid" else token))
    if authorization is not None:
        headers.append(b"Authorization: " + authorization)
    if content_hash is not None:
        headers.append(b"X-Sdk-Content-Sha256: " + content_hash)
    answer = send(port, headers, body, path, chunked=chunked)
    assert_answered(answer)
    if token != b"valid":
        assert answer.status in (400, 401), answer
