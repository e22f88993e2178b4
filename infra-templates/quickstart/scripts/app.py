#!/usr/bin/env python3
"""A stand-in for the deployed application.

GET /healthz answers 200; GET /error-rate answers the share of requests so far
that were not answered 2xx (what a metrics query would report).

Usage: scripts/app.py PORT   (the quickstart starts it before `apply`)
"""
import http.server
import sys
import threading

lock = threading.Lock()
served = {"total": 0, "errors": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/error-rate":
            with lock:
                rate = served["errors"] / served["total"] if served["total"] else 0.0
            self.reply(200, f"{rate:.4f}\n")
            return
        ok = self.path == "/healthz"
        with lock:
            served["total"] += 1
            served["errors"] += 0 if ok else 1
        self.reply(200 if ok else 404, "ok\n" if ok else "not found\n")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
