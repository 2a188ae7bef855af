#!/usr/bin/env python3
"""The sandbox's web services, on 127.0.0.1:

  service A, service B   GET /health → {"status": <STATE/a.status>, "checks": {...}} (the seed's format)
  external uptime        GET /status/<code> → that status code (httpbin's route)
  the DR site (Azure)    GET /health → 200 healthy once both services are deployed there
                         (the helm stand-in touches STATE/deployed-service-a, -b), else 503;
                         GET /service-a/health, /service-b/health → each one

  a status page          Statuspage v2 (/api/v2/status.json, /api/v2/incidents/unresolved.json):
                         STATE/statuspage.indicator says none, minor, major or critical

usage: sandbox_services.py STATE PORT_A PORT_B PORT_EXTERNAL PORT_AZURE PORT_STATUSPAGE
"""

import http.server
import json
import socketserver
import sys
import threading
from pathlib import Path

STATE = Path(sys.argv[1])


def answer(handler, code, body):
    data = json.dumps(body).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def service(name):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/health":
                return answer(self, 404, {"error": "not found"})
            status = (STATE / f"{name}.status").read_text().strip()
            checks = {"database": "ok" if status == "healthy" else "slow", "storage": "ok"}
            answer(self, 200, {"status": status, "checks": checks})

        def log_message(self, *args):
            pass

    return Handler


class External(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/status/") else 404
        answer(self, code, {"status": code})

    def log_message(self, *args):
        pass


class AzureSite(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        deployed = {s: (STATE / f"deployed-{s}").exists() for s in ["service-a", "service-b"]}
        if self.path == "/health":
            up = all(deployed.values())
            return answer(self, 200 if up else 503, {"status": "healthy" if up else "unhealthy", "deployed": deployed})
        for s, ok in deployed.items():
            if self.path == f"/{s}/health":
                return answer(self, 200 if ok else 503, {"status": "healthy" if ok else "unhealthy"})
        answer(self, 404, {"error": "not found"})

    def log_message(self, *args):
        pass


class StatusPage(http.server.BaseHTTPRequestHandler):
    PAGE = {"id": "sandbox", "name": "Provider status (sandbox)", "url": "http://127.0.0.1/", "time_zone": "Etc/UTC",
            "updated_at": "2026-11-28T03:00:00.000Z"}

    def do_GET(self):
        f = STATE / "statuspage.indicator"
        indicator = f.read_text().strip() if f.exists() else "none"
        outage = indicator in ("major", "critical")
        if self.path == "/api/v2/status.json":
            words = {"none": "All Systems Operational", "minor": "Minor Service Outage", "major": "Major Service Outage", "critical": "Critical Service Outage"}
            return answer(self, 200, {"page": self.PAGE, "status": {"indicator": indicator, "description": words.get(indicator, indicator)}})
        if self.path == "/api/v2/incidents/unresolved.json":
            incidents = [{"id": "sbx1", "name": "Elevated errors in us-east-1", "status": "investigating", "impact": indicator,
                          "created_at": "2026-11-28T02:55:00.000Z", "updated_at": "2026-11-28T03:00:00.000Z",
                          "shortlink": "http://127.0.0.1/incidents/sbx1", "components": [{"name": "Compute"}, {"name": "Databases"}]}] if outage else []
            return answer(self, 200, {"page": self.PAGE, "incidents": incidents})
        answer(self, 404, {"error": "not found"})

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ports = [int(p) for p in sys.argv[2:7]]
    handlers = [service("a"), service("b"), External, AzureSite, StatusPage]
    servers = [Server(("127.0.0.1", port), h) for port, h in zip(ports, handlers)]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
