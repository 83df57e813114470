"""The ModelArts HTTP API on aiohttp: routes, authentication, fault injection, error bodies.

Every answer carries `X-Request-Id`. Management calls need an SDK-HMAC-SHA256 signature; a
prediction also accepts `X-Auth-Token`. `/_admin/*` (faults, counters) needs no authentication.

Requests are untrusted: a body must arrive within READ_TIMEOUT_S (408), a connection that does not
complete a request within IDLE_TIMEOUT_S is closed, and whatever cannot be read or authenticated is
a 4xx with a message. A 5xx is the emulator's bug, or the model runtime's answer passed through.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from . import signing
from .errors import (
    ApiError,
    bad_http,
    bad_request,
    injected,
    internal_error,
    method_not_allowed,
    not_found_route,
    unauthorized,
)
from .faults import FaultRule, Faults
from .state import public

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 12 * 1024 * 1024  # ModelArts' limit for a prediction request
READ_TIMEOUT_S = 10.0  # from a request's headers to the end of its body
IDLE_TIMEOUT_S = 15.0  # a connection with no complete request (also: idle between requests)
BODY_KEY = web.RequestKey("body", bytes)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    return json_response(error.body(), error.status)


def json_body(request: web.Request) -> dict:
    raw = request[BODY_KEY]
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep
        raise bad_request(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


class Api:
    """Routes onto the resource managers (duck-typed: the LocalCloud wires them)."""

    def __init__(self, cloud, faults: Faults) -> None:
        self.cloud = cloud
        self.faults = faults
        self.read_timeout_s = READ_TIMEOUT_S
        self.app = web.Application(
            middlewares=[self._middleware], client_max_size=MAX_BODY_BYTES,
            handler_args={"keepalive_timeout": IDLE_TIMEOUT_S},
        )
        pid = "/{project_id}"
        routes = [
            ("POST", f"/v2{pid}/algorithms", "create_algorithm", self.create_algorithm),
            ("GET", f"/v2{pid}/algorithms", "list_algorithms", self.list_algorithms),
            ("GET", f"/v2{pid}/algorithms/{{id}}", "show_algorithm_by_uuid", self.show_algorithm),
            ("PUT", f"/v2{pid}/algorithms/{{id}}", "change_algorithm", self.change_algorithm),
            ("DELETE", f"/v2{pid}/algorithms/{{id}}", "delete_algorithm", self.delete_algorithm),
            ("POST", f"/v2{pid}/training-jobs", "create_training_job", self.create_training_job),
            ("GET", f"/v2{pid}/training-jobs/{{id}}", "show_training_job_details", self.show_training_job),
            ("DELETE", f"/v2{pid}/training-jobs/{{id}}", "delete_training_job", self.delete_training_job),
            ("POST", f"/v2{pid}/training-job-searches", "list_training_jobs", self.list_training_jobs),
            ("POST", f"/v2{pid}/training-jobs/{{id}}/actions", "stop_training_job", self.stop_training_job),
            ("GET", f"/v2{pid}/training-jobs/{{id}}/tasks/{{task}}/logs/preview",
             "show_training_job_logs_preview", self.log_preview),
            ("POST", f"/v1{pid}/models", "create_model", self.create_model),
            ("GET", f"/v1{pid}/models", "list_models", self.list_models),
            ("GET", f"/v1{pid}/models/{{id}}", "show_model", self.show_model),
            ("DELETE", f"/v1{pid}/models/{{id}}", "delete_model", self.delete_model),
            ("POST", f"/v1{pid}/services", "create_service", self.create_service),
            ("GET", f"/v1{pid}/services", "list_services", self.list_services),
            ("GET", f"/v1{pid}/services/{{id}}", "show_service", self.show_service),
            ("PUT", f"/v1{pid}/services/{{id}}", "update_service", self.update_service),
            ("DELETE", f"/v1{pid}/services/{{id}}", "delete_service", self.delete_service),
            ("POST", "/v1/infers/{id}", "predict", self.predict),
            ("GET", "/_admin/faults", "_admin", self.get_faults),
            ("PUT", "/_admin/faults", "_admin", self.put_faults),
            ("GET", "/_admin/counters", "_admin", self.get_counters),
            ("DELETE", "/_admin/counters", "_admin", self.reset_counters),
        ]
        self.operations: dict[object, str] = {}
        for method, path, operation, handler in routes:
            route = self.app.router.add_route(method, path, handler)
            self.operations[route] = operation

    # -- the gate: counters, faults, authentication, error bodies ------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = uuid.uuid4().hex
        try:
            response = await self._guarded(request, handler)
        except ApiError as error:
            response = error_response(error)
        except web.HTTPException as exc:
            if exc.status == 404:
                response = error_response(not_found_route(request.method, request.path))
            elif exc.status == 405:
                response = error_response(method_not_allowed(request.method, request.path))
            elif exc.status == 413:
                response = error_response(bad_http(413, f"Request body larger than {MAX_BODY_BYTES} bytes."))
            else:
                response = error_response(bad_http(exc.status, exc.reason))
        except (HttpProcessingError, web.RequestPayloadError) as exc:  # a body aiohttp cannot decode
            response = error_response(bad_http(400, f"The request body cannot be read: {exc}"))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:  # a bug here must answer the request, not kill the server
            log.exception("internal error serving %s %s", request.method, request.path)
            response = error_response(internal_error())
        response.headers["X-Request-Id"] = request_id
        log.debug("%s %s -> %d", request.method, request.path, response.status)
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route
        operation = self.operations.get(route)
        if operation is None:  # no route matched: aiohttp's 404/405 handler
            return await handler(request)
        if operation == "_admin":
            request[BODY_KEY] = await self._read_body(request)
            return await handler(request)
        if operation == "predict" and (request.content_length or 0) > MAX_BODY_BYTES:
            self.faults.draw(operation)
            raise bad_http(413, f"Request body larger than {MAX_BODY_BYTES} bytes.")
        latency_ms, status = self.faults.draw(operation)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        if status is not None:
            raise injected(status, operation)
        request[BODY_KEY] = await self._read_body(request)
        self._authenticate(request, operation)
        project_id = request.match_info.get("project_id")
        if project_id is not None and project_id != self.cloud.project_id:
            raise ApiError(403, "ModelArts.0105", f"The operation is not allowed: project {project_id} is not yours.")
        return await handler(request)

    async def _read_body(self, request: web.Request) -> bytes:
        try:
            return await asyncio.wait_for(request.read(), self.read_timeout_s)
        except asyncio.TimeoutError:
            raise bad_http(408, f"Request timeout: the body did not arrive within {self.read_timeout_s:g} s.") from None

    def _authenticate(self, request: web.Request, operation: str) -> None:
        token = request.headers.get("X-Auth-Token")
        if operation == "predict" and token is not None:
            # aiohttp hands over header bytes that are not UTF-8 as surrogates: compare the bytes sent
            sent = token.encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(sent, self.cloud.auth_token.encode()):
                raise unauthorized("the X-Auth-Token is not valid")
            return
        raw_path, _, query = request.raw_path.partition("?")
        try:
            signing.verify(
                request.method, raw_path, query, request.headers, request[BODY_KEY], {self.cloud.ak: self.cloud.sk},
            )
        except signing.SignatureError as exc:
            raise unauthorized(str(exc)) from None

    # -- algorithms -----------------------------------------------------------------------------

    async def create_algorithm(self, request: web.Request) -> web.Response:
        body = json_body(request)
        job_config = body.get("job_config") if isinstance(body.get("job_config"), dict) else {}
        code_files = await self.cloud.code_tree(job_config.get("code_dir"))
        return json_response(self.cloud.algorithms.create(body, code_files), 201)

    async def list_algorithms(self, request: web.Request) -> web.Response:
        return json_response(self.cloud.algorithms.list(request.query))

    async def show_algorithm(self, request: web.Request) -> web.Response:
        return json_response(self.cloud.algorithms.get(request.match_info["id"]))

    async def change_algorithm(self, request: web.Request) -> web.Response:
        body = json_body(request)
        job_config = body.get("job_config") if isinstance(body.get("job_config"), dict) else {}
        code_files = await self.cloud.code_tree(job_config.get("code_dir"))
        return json_response(self.cloud.algorithms.update(request.match_info["id"], body, code_files))

    async def delete_algorithm(self, request: web.Request) -> web.Response:
        self.cloud.algorithms.delete(request.match_info["id"])
        return web.Response(status=202)

    # -- training jobs ----------------------------------------------------------------------------

    async def create_training_job(self, request: web.Request) -> web.Response:
        return json_response(public(self.cloud.trainer.create(json_body(request))), 201)

    async def show_training_job(self, request: web.Request) -> web.Response:
        return json_response(public(self.cloud.trainer.get(request.match_info["id"])))

    async def delete_training_job(self, request: web.Request) -> web.Response:
        self.cloud.trainer.delete(request.match_info["id"])
        return web.Response(status=202)

    async def list_training_jobs(self, request: web.Request) -> web.Response:
        result = self.cloud.trainer.list(json_body(request))
        result["items"] = [public(job) for job in result["items"]]
        return json_response(result)

    async def stop_training_job(self, request: web.Request) -> web.Response:
        body = json_body(request)
        if body.get("action_type") != "terminate":
            raise bad_request(f"action_type must be \"terminate\", not {body.get('action_type')!r}")
        return json_response(public(self.cloud.trainer.terminate(request.match_info["id"])), 202)

    async def log_preview(self, request: web.Request) -> web.Response:
        return json_response(self.cloud.trainer.log_preview(request.match_info["id"], request.match_info["task"]))

    # -- models -----------------------------------------------------------------------------------

    async def create_model(self, request: web.Request) -> web.Response:
        return json_response({"model_id": self.cloud.models.create(json_body(request))["model_id"]})

    async def list_models(self, request: web.Request) -> web.Response:
        return json_response(self.cloud.models.list(request.query))

    async def show_model(self, request: web.Request) -> web.Response:
        return json_response(self.cloud.models.get(request.match_info["id"]))

    async def delete_model(self, request: web.Request) -> web.Response:
        model_id = request.match_info["id"]
        return json_response(self.cloud.models.delete(model_id, self.cloud.services.uses_model(model_id)))

    # -- services ---------------------------------------------------------------------------------

    async def create_service(self, request: web.Request) -> web.Response:
        return json_response(self.cloud.services.create(json_body(request)))

    async def list_services(self, request: web.Request) -> web.Response:
        return json_response(self.cloud.services.list(request.query))

    async def show_service(self, request: web.Request) -> web.Response:
        return json_response(self.cloud.services.show(request.match_info["id"]))

    async def update_service(self, request: web.Request) -> web.Response:
        self.cloud.services.update(request.match_info["id"], json_body(request))
        return json_response({})

    async def delete_service(self, request: web.Request) -> web.Response:
        self.cloud.services.delete(request.match_info["id"])
        return json_response({})

    async def predict(self, request: web.Request) -> web.Response:
        content_type = request.headers.get("Content-Type", "application/json")
        if not (content_type.isascii() and content_type.isprintable()):
            raise bad_request("the Content-Type header must be printable ASCII")
        status, payload, content_type = await self.cloud.services.predict(
            request.match_info["id"], request[BODY_KEY], content_type,
        )
        return web.Response(body=payload, status=status, headers={"Content-Type": content_type})

    # -- administration ---------------------------------------------------------------------------

    async def get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.faults.rules())

    async def put_faults(self, request: web.Request) -> web.Response:
        body = json_body(request)
        operation = body.pop("operation", None)
        if operation is not None and operation not in set(self.operations.values()) - {"_admin"}:
            raise bad_request(f"unknown operation {operation!r}")
        unknown = set(body) - {"error_429", "error_500", "latency_ms"}
        if unknown:
            raise bad_request(f"unknown field(s): {', '.join(sorted(unknown))}")
        try:
            rule = FaultRule(**body)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        self.faults.set(operation, rule)
        return json_response(self.faults.rules())

    async def get_counters(self, request: web.Request) -> web.Response:
        return json_response(self.faults.counters())

    async def reset_counters(self, request: web.Request) -> web.Response:
        self.faults.reset_counters()
        return json_response({})
