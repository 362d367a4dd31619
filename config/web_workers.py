"""The distributed mode's web process: `python -m config.web_workers --workers N`.

uvicorn's own `--workers N` hands one listening socket to all its workers, and asyncio accepts
every connection that is pending when a worker wakes up. So the first worker to wake takes a
burst of new connections, and keep-alive clients stay where they landed: under `python -m
bench http-distributed` (six client connections) one worker used 0.63 core and the other two
0.04-0.07, and every request queued behind that one worker's interpreter lock.

Here each worker accepts on a socket of its own, all bound to the same address with
SO_REUSEPORT, and the kernel spreads new connections over them (by a hash of each connection's
addresses). The supervisor binds the sockets and keeps them open: a worker that dies is started
again on the same socket, and the connections that arrive meanwhile wait in that socket's queue
instead of being refused.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import signal
import socket
import threading
import time

import uvicorn
from uvicorn.config import STARTUP_FAILURE

APP = "config.asgi:application"
HTTP_PROTOCOL = "httptools"
"""uvicorn's C parser (h11, its fallback, is pure Python: measured 19,700-21,600 against
24,500-25,000 transfers/s with httptools under `python -m bench http-distributed`)."""
LISTEN_BACKLOG = 2048
STOP_TIMEOUT_SECONDS = 30.0

log = logging.getLogger("ledgerfs.web")
_spawn = multiprocessing.get_context("spawn")


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) in the port's SO_REUSEPORT group, listening.

    Its protocol is given as TCP: asyncio turns TCP_NODELAY on only for connections whose
    socket says so, and without it each keep-alive response waited about 40 ms for the
    client's delayed ACK (Nagle's algorithm: uvicorn writes the head and the body apart)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    return sock


def serve(sock: socket.socket, app: str, log_level: str, access_log: bool) -> None:
    """A worker: one uvicorn server accepting on `sock` only. Exits with uvicorn's
    STARTUP_FAILURE status if the application never started."""
    config = uvicorn.Config(app, http=HTTP_PROTOCOL, log_level=log_level, access_log=access_log)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


class Supervisor:
    """Starts a worker per socket and restarts the ones that die, except after a start-up
    failure (an import or configuration error would only fail again): then, and on SIGTERM or
    SIGINT, it stops them all."""

    def __init__(self, sockets: list[socket.socket], app: str, log_level: str,
                 access_log: bool) -> None:
        self.sockets = sockets
        self.worker_args = (app, log_level, access_log)
        self.stopping = threading.Event()
        self.workers: list[multiprocessing.process.BaseProcess] = []

    def _start(self, sock: socket.socket) -> multiprocessing.process.BaseProcess:
        process = _spawn.Process(target=serve, args=(sock, *self.worker_args),
                                 name="ledgerfs-web")
        process.start()
        return process

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        self.workers = [self._start(sock) for sock in self.sockets]
        status = 0
        while not self.stopping.wait(0.5):
            for index, process in enumerate(self.workers):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    log.error("web worker %s failed to start; stopping", process.pid)
                    status = STARTUP_FAILURE
                    self.stopping.set()
                    break
                log.warning("web worker %s exited with %s; starting another",
                            process.pid, process.exitcode)
                self.workers[index] = self._start(self.sockets[index])
        self.stop()
        return status

    def stop(self) -> None:
        for process in self.workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in self.workers:
            process.join(max(deadline - time.monotonic(), 0))
            if process.is_alive():
                process.kill()
                process.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.web_workers", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--app", default=APP, help="the ASGI application, module:attribute")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    sockets = [listening_socket(args.host, args.port) for _ in range(args.workers)]
    log.info("serving on http://%s:%s with %d workers", args.host, args.port, args.workers)
    return Supervisor(sockets, args.app, args.log_level, args.access_log).run()


if __name__ == "__main__":
    raise SystemExit(main())
