"""The HTTP side: aiohttp routes for discovery, OpenAPI, resources and watches; the runners.

`serve()` runs the API until interrupted (the `modelarts-operator local kube` command);
`LocalKube` runs it in a background thread for tests and in-process use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from . import protobuf
from .api import Api, check_patch_type, present
from .discovery import SERVER_VERSION, Registry, ResourceType
from .errors import ApiError, bad_request, method_not_allowed, not_found, resource_not_found
from .selectors import field_selector, label_selector
from .store import Event, Expired, Store, Watcher
from .tables import table

log = logging.getLogger(__name__)
DEFAULT_WATCH_TIMEOUT = 1800.0


def _json(body: Any, status: int = 200, warnings: list[str] = ()) -> web.Response:
    headers = {"Warning": ", ".join(f'299 - {json.dumps(w)}' for w in warnings)} if warnings else None
    return web.Response(text=json.dumps(body), status=status, content_type="application/json", headers=headers)


class PageNotFound(Exception):
    """A path nothing serves: the real server's plain-text 404 (not a Status), as for unknown groups,
    versions and resources below /apis."""


def _page_not_found() -> web.Response:
    return web.Response(text="404 page not found\n", status=404, content_type="text/plain")


def _flag(value: str | None) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends "True")."""
    return (value or "").lower() in ("1", "t", "true")


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return _json(error.status(), error.code)
    except PageNotFound:
        return _page_not_found()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        if error.status == 404:
            return _page_not_found()
        return _json(ApiError(error.status, error.reason.replace(" ", ""), error.reason, {}).status(), error.status)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:  # a bug here must answer the request, not kill the server
        log.exception("internal error serving %s %s", request.method, request.path_qs)
        return _json(ApiError(500, "InternalError", "an error on the server has prevented the request from succeeding").status(), 500)


class KubeServer:
    """The aiohttp application around one store."""

    def __init__(self, state_file: str | None = None, bookmark_interval: float = 15.0) -> None:
        self.registry = Registry()
        self.store = Store(state_file)
        self.api = Api(self.store, self.registry)
        self.bookmark_interval = bookmark_interval
        self.address = ""
        self.app = web.Application(middlewares=[_errors])
        self.app.router.add_get("/version", self._version)
        self.app.router.add_get("/healthz", self._ok)
        self.app.router.add_get("/readyz", self._ok)
        self.app.router.add_get("/livez", self._ok)
        self.app.router.add_get("/openapi/v3", self._openapi_root)
        self.app.router.add_get("/openapi/v3/{path:.*}", self._openapi)
        self.app.router.add_route("*", "/api", self._core)
        self.app.router.add_route("*", "/api/{tail:.*}", self._core)
        self.app.router.add_route("*", "/apis", self._groups)
        self.app.router.add_route("*", "/apis/{tail:.*}", self._groups)

    # -- discovery and OpenAPI -----------------------------------------------------------

    async def _version(self, request: web.Request) -> web.Response:
        return _json(SERVER_VERSION)

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _openapi_root(self, request: web.Request) -> web.Response:
        return _json(self.registry.openapi_v3_root())

    async def _openapi(self, request: web.Request) -> web.Response:
        parts = request.match_info["path"].strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            doc = self.registry.openapi_v3("", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = self.registry.openapi_v3(parts[1], parts[2])
        else:
            doc = None
        if doc is None:
            raise resource_not_found()
        return _json(doc)

    async def _core(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.match_info.get("tail", "").split("/") if p]
        if not parts:
            return _json(self.registry.core_versions(self.address))
        if len(parts) == 1:
            return self._resource_list("", parts[0])
        return await self._resource(request, "", parts[0], parts[1:])

    async def _groups(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.match_info.get("tail", "").split("/") if p]
        if not parts:
            return _json(self.registry.group_list())
        if len(parts) == 1:
            group = self.registry.group(parts[0])
            if group is None:
                raise PageNotFound()
            return _json(group)
        if len(parts) == 2:
            return self._resource_list(parts[0], parts[1])
        return await self._resource(request, parts[0], parts[1], parts[2:])

    def _resource_list(self, group: str, version: str) -> web.Response:
        resources = self.registry.resource_list(group, version)
        if resources is None:
            if group:
                raise PageNotFound()
            raise resource_not_found()
        return _json(resources)

    # -- resources -----------------------------------------------------------------------

    def _locate(self, group: str, version: str, rest: list[str]) -> tuple[ResourceType, str | None, str | None, str | None]:
        """(type, namespace, name, subresource) of a path below /api/v1 or /apis/group/version."""
        namespace = None
        # /namespaces/{name}/status is the namespace's own subresource, not a resource in it.
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        # Below /apis, what no group serves is the plain 404 page; below /api, a NotFound Status.
        missing = PageNotFound if group else resource_not_found
        if len(rest) > 3:
            raise missing()
        plural, name, subresource = (rest + [None, None])[:3]
        rt = self.registry.lookup(group, version, plural)
        if rt is None or (namespace is not None and not rt.namespaced) or (name and rt.namespaced and namespace is None):
            raise missing()
        if subresource is not None and (subresource != "status" or not rt.status_subresource):
            if rt.custom:  # the custom resource handler names the object it does not serve this for
                raise not_found(rt.plural, rt.group, name)
            raise resource_not_found()
        return rt, namespace, name, subresource

    async def _resource(self, request: web.Request, group: str, version: str, rest: list[str]) -> web.StreamResponse:
        rt, namespace, name, subresource = self._locate(group, version, rest)
        query = request.query
        dry_run = query.get("dryRun") == "All"
        validation = query.get("fieldValidation", "Warn")
        strict = validation == "Strict"

        def reply(result: tuple[dict[str, Any], list[str]], status: int = 200) -> web.Response:
            obj, warnings = result
            return _json(obj, status, warnings if validation == "Warn" else [])

        if name is None:
            accepts = self._selector(query, rt, version)
            if request.method == "GET":
                if _flag(query.get("watch")):
                    return await self._watch(request, rt, version, namespace, accepts)
                try:
                    limit = int(query.get("limit") or 0)
                except ValueError as error:
                    raise bad_request(f"invalid limit: {error}") from error
                filtered = bool(query.get("labelSelector") or query.get("fieldSelector"))
                items, meta = self.api.list_page(rt, namespace, accepts, filtered, limit, query.get("continue", ""),
                                                 query.get("resourceVersion", ""), query.get("resourceVersionMatch", ""))
                return self._list_response(request, rt, version, items, meta)
            if request.method == "POST":
                if rt.namespaced and namespace is None:
                    raise method_not_allowed()
                body = await self._body(request, rt)
                return reply(self.api.create(rt, version, namespace or "", body, dry_run, strict), 201)
            if request.method == "DELETE":
                items, rv = self.api.list(rt, namespace, accepts)
                deleted = [self.api.delete(rt, version, o["metadata"].get("namespace", ""), o["metadata"]["name"], None, dry_run,
                                           status_if_gone=False) for o in items]
                return self._list_response(request, rt, version, deleted, {"resourceVersion": rv})
            raise method_not_allowed()

        namespace = namespace or ""
        if request.method == "GET":
            return self._object_response(request, rt, version, self.api.get(rt, namespace, name))
        if request.method == "PUT":
            body = await self._body(request, rt)
            return reply(self.api.update(rt, version, namespace, name, body, subresource, dry_run, strict))
        if request.method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            check_patch_type(rt, content_type)  # before the body is read or the object looked up
            body = await self._body(request, rt, patch=True)
            return reply(self.api.patch(rt, version, namespace, name, content_type, body, subresource, dry_run, strict))
        if request.method == "DELETE" and subresource is None:
            options = await self._body(request, rt, optional=True) or {}
            if not isinstance(options, dict):
                raise bad_request("DeleteOptions must be an object")
            dry_run = dry_run or "All" in (options.get("dryRun") or [])
            return _json(self.api.delete(rt, version, namespace, name, options.get("preconditions"), dry_run))
        raise method_not_allowed()

    @staticmethod
    def _selector(query: Any, rt: ResourceType, version: str) -> Any:
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(query.get("fieldSelector"), rt, version)
        return lambda obj: labels(obj) and fields(obj)

    @staticmethod
    async def _body(request: web.Request, rt: ResourceType, optional: bool = False, patch: bool = False) -> Any:
        """The decoded body; what does not decode is a 400 worded as the real server's decoder."""
        content_type = request.headers.get("Content-Type", "")
        if "protobuf" in content_type:
            return protobuf.decode(await request.read(), rt.kind)
        text = await request.text()
        if not text.strip() and optional:
            return None
        prefix = "error decoding patch: " if patch else \
            f"the object provided is unrecognized (must be of type {rt.kind}): couldn't get version/kind; "
        try:
            if "yaml" in content_type:
                body = yaml.safe_load(text)
            else:
                body = json.loads(text)
        except ValueError as error:
            raise bad_request(f"{prefix}json parse error: {error}") from error
        except yaml.YAMLError as error:
            raise bad_request(f"{prefix}yaml: {str(error).splitlines()[0]}") from error
        if not patch and not optional and not isinstance(body, dict):
            raise bad_request(f"{prefix}json parse error: json: cannot unmarshal {type(body).__name__} into Go value "
                              "of type struct { APIVersion string; Kind string }")
        return body

    @staticmethod
    def _wants_table(request: web.Request) -> bool:
        return "as=Table" in request.headers.get("Accept", "")

    def _list_response(self, request: web.Request, rt: ResourceType, version: str,
                       items: list[dict[str, Any]], meta: dict[str, Any]) -> web.Response:
        items = [present(rt, version, obj) for obj in items]
        if self._wants_table(request):
            tabled = table(rt, version, items, meta["resourceVersion"], request.query.get("includeObject", "Metadata"))
            tabled["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            return _json(tabled)
        if rt.custom:  # custom resource lists always say where to continue, if only ""
            meta = {"continue": "", **meta}
        else:  # typed lists carry no kind and apiVersion per item (custom resources do)
            items = [{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")} for obj in items]
        return _json({"kind": f"{rt.kind}List", "apiVersion": rt.api_version(version), "metadata": meta, "items": items})

    def _object_response(self, request: web.Request, rt: ResourceType, version: str, obj: dict[str, Any]) -> web.Response:
        obj = present(rt, version, obj)
        if self._wants_table(request):
            return _json(table(rt, version, [obj], None, request.query.get("includeObject", "Metadata")))
        return _json(obj)

    # -- watch ---------------------------------------------------------------------------

    async def _watch(self, request: web.Request, rt: ResourceType, version: str,
                     namespace: str | None, accepts: Any) -> web.StreamResponse:
        query = request.query
        try:
            since = int(query["resourceVersion"]) if query.get("resourceVersion") not in (None, "", "0") else None
            timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError as error:
            raise bad_request(f"invalid watch parameter: {error}") from error
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        if _flag(query.get("sendInitialEvents")):
            since = None  # the current objects first, whatever resourceVersion they are newer than
        as_table = self._wants_table(request)
        include_object = query.get("includeObject", "Metadata")
        watcher = Watcher(rt.key, namespace, accepts)
        # Subscribing and taking the backlog happen in one step: no event can fall in between.
        try:
            backlog = self.store.watch(watcher, since)
        except Expired as expired:
            backlog = None
            error = ApiError(410, "Expired", str(expired)).status()
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if backlog is None:
                await self._send(response, {"type": "ERROR", "object": error})
                return response

            def frame(event: Event) -> dict[str, Any]:
                obj = present(rt, version, event.obj)
                return {"type": event.type, "object": table(rt, version, [obj], None, include_object) if as_table else obj}

            for event in backlog:
                await self._send(response, frame(event))
            if since is None and bookmarks:
                # The real server marks the end of the initial ADDED events for a client that takes bookmarks.
                await self._send(response, self._bookmark(rt, version, {"k8s.io/initial-events-end": "true"}))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (remaining := deadline - loop.time()) > 0:
                periodic = bookmarks and self.bookmark_interval < remaining
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), self.bookmark_interval if periodic else remaining)
                except asyncio.TimeoutError:
                    if periodic:  # none when the watch is ending anyway
                        await self._send(response, self._bookmark(rt, version))
                    continue
                if event is None:  # the server is stopping
                    break
                await self._send(response, frame(event))
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away
        finally:
            self.store.unwatch(watcher)
        return response

    def _bookmark(self, rt: ResourceType, version: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if annotations:
            metadata["annotations"] = annotations
        obj = {"kind": rt.kind, "apiVersion": rt.api_version(version), "metadata": metadata}
        return {"type": "BOOKMARK", "object": obj}

    @staticmethod
    async def _send(response: web.StreamResponse, event: dict[str, Any]) -> None:
        await response.write(json.dumps(event).encode() + b"\n")

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str, port: int) -> web.AppRunner:
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()  # port 0 asks the OS for a free port
        self.address = f"{bound[0]}:{bound[1]}"
        return runner

    async def stop(self, runner: web.AppRunner) -> None:
        self.store.close_watchers()
        await runner.cleanup()


def write_kubeconfig(path: str | Path, url: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "localkube", "cluster": {"server": url}}],
        "users": [{"name": "localkube", "user": {}}],
        "contexts": [{"name": "localkube", "context": {"cluster": "localkube", "user": "localkube", "namespace": "default"}}],
        "current-context": "localkube",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def serve(host: str = "127.0.0.1", port: int = 0, kubeconfig: str | None = None, state_file: str | None = None) -> None:
    """Serve the API until SIGINT or SIGTERM, after writing a kubeconfig for it."""

    async def main() -> None:
        server = KubeServer(state_file)
        runner = await server.start(host, port)
        url = f"http://{server.address}"
        print(f"local kube API serving at {url}", flush=True)
        if kubeconfig:
            print(f"kubeconfig written to {write_kubeconfig(kubeconfig, url)}", flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await server.stop(runner)

    asyncio.run(main())


class LocalKube:
    """The API in a background thread with its own event loop: `with LocalKube(...) as kube:`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, kubeconfig: str | Path | None = None,
                 state_file: str | None = None, bookmark_interval: float = 15.0) -> None:
        self.host, self.port = host, port
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.state_file = state_file
        self.bookmark_interval = bookmark_interval
        self.url = ""
        self.server: KubeServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="localkube", daemon=True)

    def start(self) -> LocalKube:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()

    def __enter__(self) -> LocalKube:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            self.server = KubeServer(self.state_file, self.bookmark_interval)
            runner = await self.server.start(self.host, self.port)
            self.url = f"http://{self.server.address}"
            if self.kubeconfig:
                write_kubeconfig(self.kubeconfig, self.url)
        except BaseException as error:  # reported to the starting thread
            self._failure = error
            self._ready.set()
            return
        self._ready.set()
        await self._stopping.wait()
        await self.server.stop(runner)
