"""Through the local cloud: prediction round trips via /v1/infers/{id}, and the MNIST upload.

The local cloud runs in a child process, so the client threads measured here do not share its GIL.
"""

from __future__ import annotations

import io
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import ROOT, percentiles, timed
from modelarts_operator import mnist
from modelarts_operator.cloud import CloudCredentials, ModelArtsApi, ObsStore, ObsUrl
from modelarts_operator.cloud.predict import multipart
from modelarts_operator.cloud.resources import ModelSpec, ServiceSpec

REQUESTS_PER_CLIENT = 200


def _serve_cloud(queue, stop) -> None:
    from modelarts_operator.local.cloud import LocalCloud

    with LocalCloud() as cloud:
        queue.put((cloud.credentials(), cloud.auth_token))
        stop.wait()


def _wait(fetch, done, timeout=300):
    deadline = time.monotonic() + timeout
    while not done(value := fetch()):
        if time.monotonic() > deadline:
            raise TimeoutError(repr(value))
        time.sleep(0.5)
    return value


def _pngs(data_dir: Path, n: int) -> list[bytes]:
    from PIL import Image

    out = []
    for pixels in mnist.read_idx(data_dir / "t10k-images-idx3-ubyte.gz").to_numpy()[:n]:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def _load(url: str, token: str, pngs: list[bytes], clients: int) -> dict:
    import requests

    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        session = requests.Session()
        mine = []
        for i in range(REQUESTS_PER_CLIENT):
            body, content_type = multipart("images", "d.png", pngs[(index * REQUESTS_PER_CLIENT + i) % len(pngs)])
            started = time.perf_counter()
            response = session.post(url, data=body, headers={"Content-Type": content_type, "X-Auth-Token": token})
            mine.append(time.perf_counter() - started)
            response.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return dict(percentiles(latencies), clients=clients, requests_per_s=round(len(latencies) / wall, 1))


def _in_process(package: Path, pngs: list[bytes]) -> dict:
    from modelarts_operator.local.serving.loader import load_model_service

    service = load_model_service(package, "bench")
    for png in pngs[:20]:
        service.inference({"images": {"d.png": io.BytesIO(png)}})
    return percentiles([timed(service.inference, {"images": {"d.png": io.BytesIO(p)}}) for p in pngs[:REQUESTS_PER_CLIENT]])


def _upload_side_by_side(store: ObsStore, creds: CloudCredentials, dataset: Path, rounds: int = 3) -> dict:
    """Ours (hash check + put) against a bare ObsClient.putFile loop, alternating, fresh prefixes."""
    from obs import ObsClient

    plain = ObsClient(access_key_id=creds.ak.get_secret_value(), secret_access_key=creds.sk.get_secret_value(),
                      server=creds.obs_server, path_style=True, signature="v4", region=creds.region)
    files = sorted(p for p in dataset.iterdir() if p.is_file())
    store.ensure_bucket("bench-upload")
    ours, bare, rerun = [], [], []
    for r in range(rounds):
        target = ObsUrl("bench-upload", f"ours-{r}/")
        ours.append(timed(store.upload_folder, dataset, target))
        rerun.append(timed(store.upload_folder, dataset, target))

        def loop(prefix=f"plain-{r}/"):
            for path in files:
                response = plain.putFile("bench-upload", prefix + path.name, str(path))
                assert response.status < 300, response.errorCode

        bare.append(timed(loop))
    plain.close()
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "upload_folder_s": round(median(ours), 3),
        "plain_putfile_loop_s": round(median(bare), 3),
        "upload_folder_rerun_s": round(median(rerun), 3),
        "ratio_ours_to_plain": round(median(ours) / median(bare), 2),
        "rounds": rounds,
    }


def run() -> dict:
    context = multiprocessing.get_context("spawn")
    queue, stop = context.Queue(), context.Event()
    cloud = context.Process(target=_serve_cloud, args=(queue, stop), daemon=True)
    cloud.start()
    try:
        secret, token = queue.get(timeout=180)
        creds = CloudCredentials.from_mapping(secret)
        api, store = ModelArtsApi(lambda: creds), ObsStore(lambda: creds)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            data_dir = tmp / "mnist"
            files = mnist.fetch_mnist(data_dir, zip_urls=(), mirror_urls=())
            mnist.copy_raw(files, data_dir)  # the tutorial's folder: raw and .gz
            upload = _upload_side_by_side(store, creds, data_dir)

            subprocess.run([sys.executable, str(ROOT / "model_code" / "train_mnist_tf.py"), f"--data_url={data_dir}",
                            f"--train_url={tmp / 'out'}", "--epochs=1", "--train_limit=10000"],
                           check=True, capture_output=True)
            store.ensure_bucket("bench-model")
            store.upload_folder(tmp / "out", ObsUrl("bench-model", "V0001/"))
            model, _ = api.ensure_model(ModelSpec(name="bench-model", source_location="/bench-model/V0001/"))
            _wait(lambda: api.get_model(model.id), lambda m: m.model_status == "published")
            service, _ = api.ensure_service(ServiceSpec(name="bench-service", model_id=model.id))
            service = _wait(lambda: api.get_service(service.id), lambda s: s.status == "running")
            pngs = _pngs(data_dir, 800)
            _load(service.access_address, token, pngs[:20], 1)  # warm-up
            one = _load(service.access_address, token, pngs, 1)
            four = _load(service.access_address, token, pngs, 4)
            local = _in_process(tmp / "out" / "model", pngs)
    finally:
        stop.set()
        cloud.join(timeout=60)
    return {
        "predict_1_client": one,
        "predict_4_clients": four,
        "runtime_in_process": local,
        "ratio_http_to_in_process_p50": round(one["p50_ms"] / local["p50_ms"], 2),
        "mnist_upload": upload,
    }
