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

    def items(self, key: Key, namespace: str | None = None) -> Iterator[Obj]:
        for (ns, _), obj in sorted(self._bucket(key).items()):
            if namespace is None or ns == namespace:
                yield copy.deepcopy(obj)

    def keys(self) -> list[Key]:
        return list(self.objects)

    # -- writes ------------------------------------------------------------------------

    def put(self, key: Key, obj: Obj, event_type: str) -> Obj:
        """Store a new object or version (ADDED or MODIFIED), stamping a fresh resourceVersion."""
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        meta = obj["metadata"]
        self._bucket(key)[(meta.get("namespace", ""), meta["name"])] = obj
        self._emit(Event(self.rv, key, event_type, obj))
        return copy.deepcopy(obj)

    def remove(self, key: Key, obj: Obj) -> Obj:
        """Delete an object; the DELETED event carries `obj`, its final state."""
        meta = obj["metadata"]
        del self._bucket(key)[(meta.get("namespace", ""), meta["name"])]
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(Event(self.rv, key, "DELETED", obj))
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
