"""The local OBS server process: moto's S3 app behind the access-key gate (see obs.py)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from .obs import _Gate, _QuietHandler


def main() -> None:
    """The server process: read the access key from stdin, print `READY <url>`, serve until SIGTERM."""
    argparse.ArgumentParser(description=main.__doc__).parse_args()
    access_key = sys.stdin.readline().strip()
    gate = _Gate(DomainDispatcherApplication(create_backend_app), access_key)
    server = make_server("127.0.0.1", 0, gate, threaded=True, request_handler=_QuietHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
