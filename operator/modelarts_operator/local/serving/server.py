"""HTTP front of one model package: `POST /` runs inference, `GET /health` answers when loaded.

Requests are decoded as ModelArts does before calling the service: multipart/form-data becomes
`{field: {filename: file_object}}` (plain fields `{field: value}`), JSON stays as parsed. A file
name given twice in one field is refused (400 naming it): the dict, and answers keyed by file name,
could hold only one of them. Errors use ModelArts' body shape; codes MR.0101 (bad input, 4xx) and
MR.0105 (inference failed, 500) are those ModelArts real-time services answer with.

Every request is untrusted and bounded (`Limits`): its size (413), the time its body may take to
arrive (408) and to be processed (413). A connection that does not complete a request in
`idle_timeout_s` is closed. Whatever decoding a body raises is the sender's error (400); a
middleware answers anything else in ModelArts' shape, so 5xx means a bug of the model package.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from aiohttp import web

from modelarts_operator.local.serving.base import TfServingBaseService
from modelarts_operator.local.serving.loader import load_model_service

log = logging.getLogger(__name__)

MESSAGE_CHARS = 300  # error messages quote the input (a boundary line, a field name): keep them short


@dataclass(frozen=True)
class Limits:
    """What one request may cost; `build_app(service, limits=Limits(read_timeout_s=...))` changes them."""

    body_bytes: int = 12 * 1024 * 1024  # ModelArts' limit for a real-time prediction request
    form_fields: int = 64
    read_timeout_s: float = 10.0  # from the request's headers to the end of its body
    idle_timeout_s: float = 15.0  # a connection with no complete request: more than the gateway's keep-alive
    inference_timeout_s: float = 30.0  # less than the gateway's 40 s, so the sender gets this answer


SERVICE_KEY = web.AppKey("service", TfServingBaseService)
EXECUTOR_KEY = web.AppKey("executor", ThreadPoolExecutor)
LIMITS_KEY = web.AppKey("limits", Limits)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def error(status: int, code: str, message: str) -> web.Response:
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + "..."
    return web.json_response({"error_code": code, "error_msg": message}, status=status)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def form_data(form) -> dict:
    """`{field: {filename: file}}` and `{field: value}`; a name that would overwrite another is refused."""
    data: dict = {}
    for field, value in form.items():
        if isinstance(value, web.FileField):
            files = data.setdefault(field, {})
            if not isinstance(files, dict):
                raise BadRequest(400, f"field {field!r} holds both a value and files")
            if value.filename in files:
                raise BadRequest(400, f"two files named {value.filename!r} in field {field!r}: give each file its own name")
            files[value.filename] = io.BytesIO(value.file.read())
        elif field in data:
            raise BadRequest(400, f"field {field!r} is given more than once")
        else:
            data[field] = value
    return data


async def decode_request(request: web.Request):
    """The request body as the service's `_preprocess` receives it; BadRequest for anything else."""
    try:
        if request.content_type == "multipart/form-data":
            return form_data(await request.post())
        if request.content_type == "application/json":
            body = await request.read()
            try:
                return json.loads(body, parse_constant=_no_constants)
            except (ValueError, RecursionError) as exc:
                raise BadRequest(400, f"the body is not valid JSON: {exc}") from None
    except BadRequest:
        raise
    except web.HTTPException as exc:  # aiohttp's own limits: body size, number of fields
        raise BadRequest(exc.status, exc.text or exc.reason) from None
    except Exception as exc:  # aiohttp's multipart parser raises ValueError, RuntimeError, LookupError, ...
        raise BadRequest(400, f"the request body could not be decoded: {type(exc).__name__}: {exc}") from None
    raise BadRequest(
        400, f"unsupported Content-Type {request.content_type!r}: send multipart/form-data or application/json"
    )


async def infer(request: web.Request) -> web.Response:
    service, limits = request.app[SERVICE_KEY], request.app[LIMITS_KEY]
    if (request.content_length or 0) > limits.body_bytes:
        return error(413, "MR.0101", f"request body larger than {limits.body_bytes} bytes")
    try:
        data = await asyncio.wait_for(decode_request(request), limits.read_timeout_s)
    except asyncio.TimeoutError:
        return error(408, "MR.0101", f"the request body did not arrive within {limits.read_timeout_s:g} s")
    except BadRequest as exc:
        return error(exc.status, "MR.0101", str(exc))
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(request.app[EXECUTOR_KEY], service.inference, data)
    try:
        result = await asyncio.wait_for(work, limits.inference_timeout_s)
    except asyncio.TimeoutError:
        return error(413, "MR.0101", f"the request took more than {limits.inference_timeout_s:g} s: send smaller pictures")
    except ValueError as exc:  # raised by the package's _preprocess for bad input
        return error(400, "MR.0101", str(exc))
    except Exception as exc:  # the package's own bug: log the traceback, answer without it
        log.exception("inference failed")
        return error(500, "MR.0105", f"inference failed: {type(exc).__name__}: {exc}")
    try:
        body = json.dumps(result, default=_jsonable, allow_nan=False)
    except (TypeError, ValueError) as exc:  # NaN scores, objects JSON cannot carry: also the package's bug
        log.exception("inference answered what JSON cannot carry")
        return error(500, "MR.0105", f"inference answered what JSON cannot carry: {exc}")
    return web.Response(text=body, content_type="application/json")


async def health(request: web.Request) -> web.Response:
    request.app[SERVICE_KEY].ping()
    return web.json_response({"status": "ok", "model_name": request.app[SERVICE_KEY].model_name})


@web.middleware
async def modelarts_errors(request: web.Request, handler) -> web.StreamResponse:
    """No answer leaves in aiohttp's own shape (an HTML 404, a plain-text 500)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, "MR.0101", f"{request.method} {request.path}: {exc.reason}")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error(500, "MR.0105", f"internal error: {type(exc).__name__}")


def build_app(service: TfServingBaseService, workers: int = 4, limits: Limits | None = None) -> web.Application:
    limits = limits or Limits()
    app = web.Application(
        middlewares=[modelarts_errors], client_max_size=limits.body_bytes, client_max_fields=limits.form_fields,
        handler_args={"keepalive_timeout": limits.idle_timeout_s},
    )
    app[SERVICE_KEY] = service
    app[LIMITS_KEY] = limits
    app[EXECUTOR_KEY] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
    app.router.add_post("/", infer)
    app.router.add_get("/health", health)

    async def shutdown(app: web.Application) -> None:
        app[EXECUTOR_KEY].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shutdown)
    return app


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0 picks a free port); returns the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, runner.addresses[0][1]


async def _run(model_dir, host: str, port: int, model_name: str) -> None:
    service = load_model_service(model_dir, model_name)
    runner, bound_port = await start(build_app(service), host, port)
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
