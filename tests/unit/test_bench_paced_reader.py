"""The benchmarks' balance reader (`bench.paced_reader`): reads on a fixed schedule from a
process of its own, latency counted from each read's due time, a slow read never holding up
the next one, only reads due after `measure()` counted, a failed read reported."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.paced_reader import PacedReader


class _Balances(BaseHTTPRequestHandler):
    """Answers balance reads; the account named "slow" takes `SLOW_SECONDS`, "gone" gets 404.
    Records when each request arrived."""

    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes: with Nagle's algorithm the body waited for
    # the reader's delayed ACK of the head, 40 ms a read, which on a slow machine pushed quick
    # reads past the thresholds below.
    disable_nagle_algorithm = True
    SLOW_SECONDS = 0.6
    arrivals: list[tuple[float, str]] = []

    def do_GET(self) -> None:
        account = self.path.rpartition("=")[2]
        self.arrivals.append((time.perf_counter(), account))
        if account == "slow":
            time.sleep(self.SLOW_SECONDS)
        status = 404 if account == "gone" else 200
        body = b'{"balances": {}}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    # The reader opens connections in bursts (a read due while the others wait takes a new
    # one). With the default backlog of 5 a connection turned away waits a second for its
    # retry: reads of 1.2 s were seen.
    request_queue_size = 128


@pytest.fixture
def server():
    _Balances.arrivals = []
    httpd = _Server(("127.0.0.1", 0), _Balances)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_reads_keep_their_schedule_and_count_only_once_measuring(server):
    reader = PacedReader(server.server_port, "key", ["a", "b"], rate=100)
    time.sleep(0.5)  # reading, not counted yet
    reader.measure()
    measured_from = time.perf_counter()
    time.sleep(1.0)
    latencies = reader.finish()
    assert 85 <= len(latencies) <= 115
    assert all(0 < latency < 0.5 for latency in latencies)
    before = [at for at, _ in _Balances.arrivals if at < measured_from]
    assert len(before) >= 40  # it read during the first half second, as scheduled
    assert all(account in ("a", "b") for _, account in _Balances.arrivals)


def test_a_slow_read_holds_up_no_other_and_shows_its_whole_wait(server):
    reader = PacedReader(server.server_port, "key", ["slow", "a", "b", "c", "d"], rate=50)
    reader.measure()
    time.sleep(1.5)
    latencies = reader.finish()
    slow = [latency for latency in latencies if latency >= _Balances.SLOW_SECONDS]
    # Far below a slow read's 0.6 s, yet with room for a host that takes part of this
    # machine's CPU (quick reads of up to 0.25 s were seen there).
    quick = [latency for latency in latencies if latency < 0.3]
    assert slow, "the slow reads' latency includes the server's delay"
    assert len(slow) + len(quick) == len(latencies)
    assert len(quick) >= 0.6 * len(latencies)
    # Reads kept arriving while a slow one was being answered: never a gap of a slow read.
    arrivals = [at for at, _ in _Balances.arrivals]
    assert max(b - a for a, b in zip(arrivals[:-1], arrivals[1:], strict=True)) < 0.4


def test_a_failed_read_is_reported(server):
    reader = PacedReader(server.server_port, "key", ["gone"], rate=20)
    reader.measure()
    time.sleep(0.3)
    with pytest.raises(RuntimeError, match="balance -> 404"):
        reader.finish()
