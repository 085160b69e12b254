"""A webhook receiver as a team would write one, run as its own process by the tests: it
checks monitord's signature the way README.md ("Signed webhooks") shows, with the
standard library only, and refuses replays.

    python signed_receiver.py SECRET_FILE AUTHORIZATION_FILE LOG_FILE

It listens on 127.0.0.1 (a free port, printed as "listening PORT" on stdout) and answers
204 to a notice it takes, 401 to a missing or wrong signature or Authorization header, and
409 to a replay (a timestamp too far from its clock, or a signature it has seen). Each
request is logged to LOG_FILE as one JSON line: the verdict, the headers and the body.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import sys
import time
from pathlib import Path

# --- the README's snippet ----------------------------------------------------------------

class Refused(Exception):
    pass


class Verifier:
    def __init__(self, secret: bytes, tolerance: int = 300) -> None:
        self.secret = secret
        self.tolerance = tolerance
        self.seen: dict[str, float] = {}     # signature -> when it expires

    def verify(self, timestamp: str, signature: str, body: bytes, now: float) -> None:
        """Raise Refused unless the request is signed with our secret, fresh, and new."""
        if not timestamp.isdigit():
            raise Refused("no timestamp")
        expected = "v1=" + hmac.new(self.secret, timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise Refused("bad signature")
        if abs(now - int(timestamp)) > self.tolerance:
            raise Refused("replay: the timestamp is too old (or too new)")
        self.seen = {s: until for s, until in self.seen.items() if until > now}
        if signature in self.seen:
            raise Refused("replay: this signature was seen before")
        self.seen[signature] = now + 2 * self.tolerance

# ------------------------------------------------------------------------------------------


def main(secret_file: str, authorization_file: str, log_file: str) -> None:
    verifier = Verifier(Path(secret_file).read_bytes().splitlines()[0])
    authorization = Path(authorization_file).read_text().splitlines()[0]
    log = Path(log_file)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, verdict = 204, "accepted"
            try:
                if not hmac.compare_digest(self.headers.get("Authorization", ""),
                                           authorization):
                    raise Refused("no or wrong Authorization header")
                verifier.verify(self.headers.get("X-Monitord-Timestamp", ""),
                                self.headers.get("X-Monitord-Signature", ""), body,
                                time.time())
            except Refused as e:
                status, verdict = (409 if str(e).startswith("replay") else 401), str(e)
            with log.open("a") as f:
                f.write(json.dumps({"verdict": verdict, "headers": dict(self.headers),
                                    "body": body.decode()}) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:4])
