#!/usr/bin/env python3
"""A stand-in for the deployed application of one environment.

It is build registry.example.com/shop/web:1.4.2 of the web service. The
release terraform deploys is `terraform_data.web` in
infra/ENVIRONMENT/terraform.tfstate (the local state the quickstart keeps):
when that names another image, this build is not what the environment is
supposed to run, and /healthz says so with a 500 — as a real service would
fail its health check after a release that does not start.

GET /healthz answers 200 (or 500, above); GET /error-rate answers the share of
requests in the last 10 seconds, while the release deployed now was deployed,
that were not answered 2xx (what a metrics query of that release reports).

Usage: scripts/app.py PORT ENVIRONMENT   (the quickstart starts it before `apply`)
"""
import http.server
import json
import pathlib
import sys
import threading
import time

BUILD = "registry.example.com/shop/web:1.4.2"
WINDOW = 10.0

port, env = int(sys.argv[1]), sys.argv[2]
state = pathlib.Path(__file__).resolve().parent.parent / "infra" / env / "terraform.tfstate"
lock = threading.Lock()
answered = []  # (time, ok, release)


def deployed_image():
    """The web image terraform last applied, or None before the first deploy."""
    try:
        doc = json.loads(state.read_text())
    except (OSError, ValueError):
        return None
    for resource in doc.get("resources", []):
        if resource.get("type") == "terraform_data" and resource.get("name") == "web":
            for instance in resource.get("instances", []):
                value = instance.get("attributes", {}).get("input", {}).get("value", {})
                return value.get("image")
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        now = time.time()
        image = deployed_image()
        if self.path == "/error-rate":
            with lock:
                recent = [ok for at, ok, release in answered if now - at <= WINDOW and release == image]
            rate = recent.count(False) / len(recent) if recent else 0.0
            self.reply(200, f"{rate:.4f}\n")
            return
        if self.path == "/healthz":
            if image in (None, BUILD):
                status, body = 200, "ok\n"
            else:
                status, body = 500, f"terraform deployed {image}, but this is {BUILD}\n"
        else:
            status, body = 404, "not found\n"
        with lock:
            answered.append((now, status < 300, image))
            del answered[: max(0, len(answered) - 10000)]
        self.reply(status, body)

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
