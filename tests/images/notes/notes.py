"""notes: a tiny stateful web service for the disaster-recovery tests.

It keeps what a real self-hosted app keeps: rows in a SQLite database
(WAL mode, written on every POST), uploaded files, and a small state file in a
named volume.

  GET  /            "notes: N"
  GET  /health      200 "ok"
  GET  /notes       every row as JSON
  POST /notes       the body becomes a row; returns its id
  PUT  /files/NAME  the body becomes /data/uploads/NAME; returns its SHA-256
"""
import hashlib
import json
import os
import signal
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA = os.environ.get("NOTES_DATA", "/data")
STATE = os.environ.get("NOTES_STATE", "/state")
DB = os.path.join(DATA, "notes.db")
LOCK = threading.Lock()


def connect():
    conn = sqlite3.connect(DB, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return conn


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, kind="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, "ok\n")
        with connect() as conn:
            rows = conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()
        if self.path == "/notes":
            return self.reply(200, json.dumps(rows), "application/json")
        if self.path == "/":
            return self.reply(200, "notes: %d\n" % len(rows))
        return self.reply(404, "not found\n")

    def do_POST(self):
        if self.path != "/notes":
            return self.reply(404, "not found\n")
        text = self.body().decode()
        with LOCK, connect() as conn:
            row = conn.execute("INSERT INTO notes (body) VALUES (?)", (text,)).lastrowid
        with LOCK:
            with open(os.path.join(STATE, "last-id"), "w") as handle:
                handle.write("%d\n" % row)
        return self.reply(201, "%d\n" % row)

    def do_PUT(self):
        name = self.path[len("/files/"):]
        if not self.path.startswith("/files/") or not name or "/" in name or name.startswith("."):
            return self.reply(400, "bad name\n")
        data = self.body()
        os.makedirs(os.path.join(DATA, "uploads"), exist_ok=True)
        with open(os.path.join(DATA, "uploads", name), "wb") as handle:
            handle.write(data)
        return self.reply(201, hashlib.sha256(data).hexdigest() + "\n")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *args: os._exit(0))  # PID 1 has no default handler
    connect().close()
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
