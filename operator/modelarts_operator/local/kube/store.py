"""Objects, resourceVersions, the watch-event history and the live watchers.

Everything here runs on the server's single event loop and never awaits, so a list and the
start of a watch from its resourceVersion cannot interleave with a write.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Key = tuple[str, str]  # (group, plural)
Obj = dict[str, Any]


@dataclass
class Event:
    rv: int
    key: Key
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj
    prev: Obj | None = None  # the object before the event (None for ADDED): lists at older versions undo events


def _sort_key(item: tuple[tuple[str, str], Obj]) -> str:
    """Objects in the order of their storage keys, as etcd lists them (/namespace/name)."""
    (namespace, name), _ = item
    return f"/{namespace}/{name}" if namespace else f"/{name}"


@dataclass(eq=False)
class Watcher:
    key: Key
    namespace: str | None
    accepts: Callable[[Obj], bool]
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def matches(self, event: Event) -> bool:
        if event.key != self.key:
            return False
        if self.namespace is not None and event.obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.accepts(event.obj)


class Expired(Exception):
    """The requested resourceVersion is older than the history window."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")


class Store:
    def __init__(self, state_file: str | os.PathLike[str] | None = None, history: int = 10_000) -> None:
        self.rv = 0
        self.objects: dict[Key, dict[tuple[str, str], Obj]] = {}
        self.history: deque[Event] = deque(maxlen=history)
        # Watches may resume from any resourceVersion at or after this one.
        self.floor = 0
        self.watchers: set[Watcher] = set()
        self.state_file = Path(state_file) if state_file else None
        if self.state_file and self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            self.rv = self.floor = int(state["resourceVersion"])
            for entry in state["objects"]:
                group, plural = entry["key"]
                obj = entry["object"]
                self._bucket((group, plural))[(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj

    def _bucket(self, key: Key) -> dict[tuple[str, str], Obj]:
        return self.objects.setdefault(key, {})

    # -- reads -------------------------------------------------------------------------

    def get(self, key: Key, namespace: str, name: str) -> Obj | None:
        obj = self._bucket(key).get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def items(self, key: Key, namespace: str | None = None, rv: int | None = None) -> Iterator[Obj]:
        """The objects now, or as they were at resourceVersion `rv` (Expired if that is out of the history)."""
        bucket = self._bucket(key) if rv is None or rv >= self.rv else self._snapshot(key, rv)
        for (ns, _), obj in sorted(bucket.items(), key=_sort_key):
            if namespace is None or ns == namespace:
                yield copy.deepcopy(obj)

    def _snapshot(self, key: Key, rv: int) -> dict[tuple[str, str], Obj]:
        if rv < self.floor:
            raise Expired(rv, self.floor)
        objects = dict(self._bucket(key))
        for event in reversed(self.history):
            if event.rv <= rv:
                break
            if event.key == key:
                meta = event.obj["metadata"]
                ident = (meta.get("namespace", ""), meta["name"])
                if event.prev is None:
                    objects.pop(ident, None)
                else:
                    objects[ident] = event.prev
        return objects

    def keys(self) -> list[Key]:
        return list(self.objects)

    # -- writes ------------------------------------------------------------------------

    def put(self, key: Key, obj: Obj, event_type: str) -> Obj:
        """Store a new object or version (ADDED or MODIFIED), stamping a fresh resourceVersion."""
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        meta = obj["metadata"]
        ident = (meta.get("namespace", ""), meta["name"])
        prev = self._bucket(key).get(ident)
        self._bucket(key)[ident] = obj
        self._emit(Event(self.rv, key, event_type, obj, prev))
        return copy.deepcopy(obj)

    def remove(self, key: Key, obj: Obj) -> Obj:
        """Delete an object; the DELETED event carries `obj` (its last stored state) at a new resourceVersion."""
        meta = obj["metadata"]
        prev = self._bucket(key).pop((meta.get("namespace", ""), meta["name"]))
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(Event(self.rv, key, "DELETED", obj, prev))
        return copy.deepcopy(obj)

    def _emit(self, event: Event) -> None:
        if len(self.history) == self.history.maxlen:
            self.floor = self.history[0].rv
        self.history.append(event)
        for watcher in self.watchers:
            if watcher.matches(event):
                watcher.queue.put_nowait(event)
        self._save()

    def _save(self) -> None:
        if not self.state_file:
            return
        state = {
            "resourceVersion": self.rv,
            "objects": [{"key": list(key), "object": obj} for key, bucket in self.objects.items() for obj in bucket.values()],
        }
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)

    # -- watches -----------------------------------------------------------------------

    def watch(self, watcher: Watcher, since: int | None) -> list[Event]:
        """Subscribe; return the events the watcher must see first.

        With no resourceVersion it gets every current object as ADDED (as the real server does);
        otherwise the history after `since`, or `Expired` if that part of the history is gone.
        """
        if since is None:
            backlog = [
                Event(self.rv, watcher.key, "ADDED", obj)
                for obj in self.items(watcher.key, watcher.namespace)
                if watcher.accepts(obj)
            ]
        else:
            if since < self.floor:
                raise Expired(since, self.floor)
            backlog = [e for e in self.history if e.rv > since and watcher.matches(e)]
        self.watchers.add(watcher)
        return backlog

    def unwatch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    def close_watchers(self) -> None:
        for watcher in self.watchers:
            watcher.queue.put_nowait(None)
