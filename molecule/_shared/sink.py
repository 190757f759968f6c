"""Test-only webhook sink: every POST body Alertmanager sends is appended, with the path it was
sent to and the time it arrived, as one JSON line to /var/lib/qb-sink/alerts.jsonl."""

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = "/var/lib/qb-sink/alerts.jsonl"


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(LOG, "a") as handle:
            handle.write(json.dumps({"at": time.time(), "path": self.path, "body": json.loads(body)}) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", 9199), Sink).serve_forever()
