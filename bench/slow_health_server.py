"""A health endpoint that answers `{"status": "healthy"}` after DELAY seconds, to as many
clients at once as ask (one thread each). Prints its port. usage: slow_health_server.py DELAY"""

import http.server
import json
import socketserver
import sys
import time

DELAY = float(sys.argv[1])
BODY = json.dumps({"status": "healthy"}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(DELAY)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # 200 probes connect at once: no SYN backlog drops


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
