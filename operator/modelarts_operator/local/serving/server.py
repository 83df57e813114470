"""HTTP front of one model package: `POST /` runs inference, `GET /health` answers when loaded.

Requests are decoded as ModelArts does before calling the service: multipart/form-data becomes
`{field: {filename: file_object}}` (plain fields `{field: value}`), JSON stays a dict. Errors use
ModelArts' body shape; codes MR.0101 (bad input, 400) and MR.0105 (inference failed, 500) are
those ModelArts real-time services answer with.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from aiohttp import web

from modelarts_operator.local.serving.base import TfServingBaseService
from modelarts_operator.local.serving.loader import load_model_service

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 12 * 1024 * 1024  # ModelArts' limit for a real-time prediction request
SERVICE_KEY = web.AppKey("service", TfServingBaseService)
EXECUTOR_KEY = web.AppKey("executor", ThreadPoolExecutor)


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error_code": code, "error_msg": message}, status=status)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


async def decode_request(request: web.Request):
    """The request body as the service's `_preprocess` receives it."""
    if request.content_type == "multipart/form-data":
        form = await request.post()
        data: dict = {}
        for field, value in form.items():
            if isinstance(value, web.FileField):
                data.setdefault(field, {})[value.filename or field] = io.BytesIO(value.file.read())
            else:
                data[field] = value
        return data
    if request.content_type == "application/json":
        try:
            return await request.json()
        except json.JSONDecodeError as exc:
            raise ValueError(f"the body is not valid JSON: {exc}") from None
    raise ValueError(
        f"unsupported Content-Type {request.content_type!r}: send multipart/form-data or application/json"
    )


async def infer(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    try:
        data = await decode_request(request)
    except web.HTTPRequestEntityTooLarge:
        return error(413, "MR.0101", f"request body larger than {MAX_BODY_BYTES} bytes")
    except ValueError as exc:
        return error(400, "MR.0101", str(exc))
    loop = asyncio.get_running_loop()
    try:
        result = await loop.run_in_executor(request.app[EXECUTOR_KEY], service.inference, data)
    except ValueError as exc:  # raised by the package's _preprocess for bad input
        return error(400, "MR.0101", str(exc))
    except Exception as exc:  # the package's own bug: log the traceback, answer without it
        log.exception("inference failed")
        return error(500, "MR.0105", f"inference failed: {type(exc).__name__}: {exc}")
    return web.json_response(result, dumps=lambda obj: json.dumps(obj, default=_jsonable))


async def health(request: web.Request) -> web.Response:
    request.app[SERVICE_KEY].ping()
    return web.json_response({"status": "ok", "model_name": request.app[SERVICE_KEY].model_name})


def build_app(service: TfServingBaseService, workers: int = 4) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SERVICE_KEY] = service
    app[EXECUTOR_KEY] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
    app.router.add_post("/", infer)
    app.router.add_get("/health", health)

    async def shutdown(app: web.Application) -> None:
        app[EXECUTOR_KEY].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shutdown)
    return app


async def _run(model_dir, host: str, port: int, model_name: str) -> None:
    service = load_model_service(model_dir, model_name)
    runner = web.AppRunner(build_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    # The parent process (the local cloud) waits for this line to know the service is up.
    print(f"READY http://{host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def serve(model_dir, host: str = "127.0.0.1", port: int = 8080, model_name: str = "model") -> None:
    """Load the package, serve it until SIGTERM/SIGINT. Prints `READY <url>` once it accepts requests."""
    asyncio.run(_run(model_dir, host, port, model_name))
