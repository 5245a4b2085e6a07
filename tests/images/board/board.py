"""board: a tiny message board whose messages live in Valkey, the other
container of its pod (the pods example and the `pods` molecule scenario).

It reaches Valkey on 127.0.0.1 (the pod shares one network namespace) with a
few lines of RESP, the Redis protocol, so the image needs no client library.

  GET  /            "board: N messages"
  GET  /health      200 "ok" when Valkey answers PING, else 503
  GET  /messages    every message as JSON
  POST /messages    the body becomes a message; returns its number
"""
import json
import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VALKEY = (os.environ.get("VALKEY_HOST", "127.0.0.1"), int(os.environ.get("VALKEY_PORT", "6379")))
KEY = os.environ.get("BOARD_KEY", "board:messages")
PORT = int(os.environ.get("BOARD_PORT", "8080"))


def _read_reply(stream):
    line = stream.readline()
    if not line:
        raise ConnectionError("Valkey closed the connection")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2].decode()
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(stream) for _ in range(count)]
    raise RuntimeError("unexpected reply %r" % line)


def valkey(*args):
    """One command, one connection: (RESP array of bulk strings) -> the reply."""
    payload = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection(VALKEY, timeout=5) as conn:
        conn.sendall(payload)
        with conn.makefile("rb") as stream:
            return _read_reply(stream)


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, kind="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        try:
            if self.path == "/health":
                return self.reply(200 if valkey("PING") == "PONG" else 503, "ok\n")
            if self.path == "/messages":
                return self.reply(200, json.dumps(valkey("LRANGE", KEY, 0, -1)), "application/json")
            if self.path == "/":
                return self.reply(200, "board: %d messages\n" % valkey("LLEN", KEY))
        except (OSError, RuntimeError) as exc:
            return self.reply(503, "valkey: %s\n" % exc)
        return self.reply(404, "not found\n")

    def do_POST(self):
        if self.path != "/messages":
            return self.reply(404, "not found\n")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            return self.reply(200, "%d\n" % valkey("RPUSH", KEY, body))
        except (OSError, RuntimeError) as exc:
            return self.reply(503, "valkey: %s\n" % exc)

    def log_message(self, fmt, *args):
        sys.stderr.write("board: " + (fmt % args) + "\n")


def main():
    # As PID 1 a process gets no default SIGTERM action: stop promptly when podman stops the container.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
