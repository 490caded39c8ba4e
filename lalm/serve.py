"""An OpenAI-compatible HTTP server for an LALM: chat completions with audio, streaming, batching.

    python -m lalm.serve --model runs/my-model                      # http://127.0.0.1:8000
    python -m lalm.serve --config configs/offline_small.yaml --api-key secret
    python -m lalm.serve --model runs/my-model --backend vllm       # the LLM runs in vLLM (GPU)

Routes: POST /v1/chat/completions (text and `input_audio` parts, `stream: true` for server-sent
events), GET /v1/models, GET /health, and GET / (a web page: microphone or file, streamed answer).

Built on the standard library's ThreadingHTTPServer: a thread per connection only parses, decodes
audio and waits, while one worker thread owns the model (`lalm.serve_batch`), so an async stack
would add a dependency without adding throughput. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from lalm.cli import add_model_arguments, load_model, model_name
from lalm.errors import run_command
from lalm.serve_api import APIError, Limits, ResponseShape, parse_chat_request
from lalm.serve_batch import Backend, BatchWorker, HFBackend, Job

DEFAULT_BACKLOG = 128  # socketserver's 5 resets connections of a modest burst
DEFAULT_DRAIN_SECONDS = 30.0  # SIGTERM: how long in-flight requests may take to finish

log = logging.getLogger("lalm.serve")

WEB = Path(__file__).parent / "web"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@dataclass
class App:
    """What the handlers share: the worker that owns the model, and the server's settings."""

    worker: BatchWorker
    model_name: str
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None
    default_temperature: float = 0.0
    default_top_p: float = 1.0
    created: int = field(default_factory=lambda: int(time.time()))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App, backlog: int = DEFAULT_BACKLOG):
        self.request_queue_size = backlog  # read by listen() in the base __init__
        super().__init__(address, Handler)
        self.app = app
        self.draining = False
        self.in_flight = 0  # requests between their request line and their last byte
        self.idle = threading.Condition()

    def started(self) -> bool:
        """Count a request that has begun; False if it began after draining started (refuse it)."""
        with self.idle:
            self.in_flight += 1
            return not self.draining

    def finished(self) -> None:
        with self.idle:
            self.in_flight -= 1
            self.idle.notify_all()

    def drain(self, seconds: float) -> int:
        """Stop accepting connections and wait up to `seconds` for the requests in flight (connection
        threads are daemons: whatever is left dies with the process). Returns how many were left."""
        with self.idle:
            self.draining = True
        self.socket.close()  # new connections are refused from now on, not queued and dropped
        deadline = time.monotonic() + seconds
        with self.idle:
            while self.in_flight and (left := deadline - time.monotonic()) > 0:
                self.idle.wait(left)
            return self.in_flight

    def handle_error(self, request, client_address) -> None:
        """A client that went away mid-answer is routine for a server: one log line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):  # BrokenPipeError, ConnectionResetError, ...
            log.info("%s went away: %s", client_address[0], type(error).__name__)
        else:
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Server:
        """Serve on a daemon thread (tests, notebooks); `stop` ends it."""
        threading.Thread(target=self.serve_forever, name="lalm-http", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.app.worker.stop()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for the openai client; streams use chunked encoding
    server_version = "lalm-kit"
    server: Server
    counted = False  # whether this request is in the server's in-flight count
    refused = False  # it began while the server was draining

    def parse_request(self) -> bool:
        # the request line has arrived: from here to its last byte it is in flight (SIGTERM waits for it)
        self.counted, self.refused = True, not self.server.started()
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self.counted:
                self.counted = False
                self.server.finished()

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def route(self, method: str) -> None:
        self.body_read = False
        path = urlsplit(self.path).path
        action = ROUTES.get((method, path))
        page = web_files().get(path) if method == "GET" else None
        try:
            if self.refused:
                self.close_connection = True
                raise APIError(503, "the server is shutting down; retry on a new connection")
            if action is None and page is None:
                allowed = [m for m, p in ROUTES if p == path] or (["GET"] if path in web_files() else [])
                if allowed:
                    raise APIError(405, f"{path} takes {' or '.join(allowed)}, not {method}")
                raise APIError(404, f"no route {path}; the API is at /v1/chat/completions")
            if path.startswith("/v1/"):
                self.authorize()
            if action is not None:
                action(self)
            else:
                self.send_file(page)
        except APIError as err:
            self.send_json(err.status, err.body())
        except OSError:  # the client went away
            self.close_connection = True
        except Exception as err:
            log.exception("%s %s failed", method, path)
            self.send_json(500, APIError(500, f"internal error: {type(err).__name__}: {err}").body())

    # ----------------------------------------------------------------------------- routes

    def chat_completions(self) -> None:
        app = self.server.app
        request = parse_chat_request(self.read_json(), app.limits, app.default_temperature, app.default_top_p)
        job = app.worker.submit(request, app.limits.max_prompt_tokens)
        shape = ResponseShape(app.model_name)
        try:
            if request.stream:
                self.stream(job, shape, request.include_usage)
            else:
                self.send_json(200, shape.completion(job.result(self.client_connected)))
        except OSError:  # a failed write, or a closed connection seen while waiting: stop the row
            job.cancelled.set()
            raise

    def models(self) -> None:
        app = self.server.app
        card = {"id": app.model_name, "object": "model", "created": app.created, "owned_by": "lalm-kit"}
        self.send_json(200, {"object": "list", "data": [card]})

    def health(self) -> None:
        app = self.server.app
        self.send_json(200, {"status": "ok", "model": app.model_name, "auth_required": app.api_key is not None,
                             "max_tokens": app.limits.max_tokens, "max_audio_seconds": app.limits.max_audio_seconds})

    # ----------------------------------------------------------------------------- helpers

    def authorize(self) -> None:
        key = self.server.app.api_key
        sent = self.headers.get("Authorization", "").encode()
        if key is not None and not hmac.compare_digest(sent, f"Bearer {key}".encode()):
            raise APIError(401, "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                           code="invalid_api_key")

    def read_json(self) -> object:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise APIError(411, "send the JSON body with a Content-Length header")
        limit = self.server.app.limits.max_request_bytes
        if int(length) > limit:
            raise APIError(413, f"the request body is {int(length):,} bytes, over this server's limit of {limit:,}",
                           code="request_too_large")
        raw = self.rfile.read(int(length))
        self.body_read = True
        try:
            return json.loads(raw)
        except ValueError as err:
            raise APIError(400, f"the request body is not valid JSON ({err})", code="invalid_json") from err
        except RecursionError as err:  # the parser recurses once per nested [ or {
            raise APIError(400, "the request body nests arrays or objects too deeply to parse",
                           code="invalid_json") from err

    def client_connected(self) -> bool:
        """False once the client has closed its end: its socket reads as end-of-file. (A client that
        pipelines its next request reads as data, and counts as connected.)"""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)) != b""
        except BlockingIOError:
            return True
        except (OSError, ValueError):  # reset, or already closed
            return False

    def stream(self, job: Job, shape: ResponseShape, include_usage: bool) -> None:
        """Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`."""
        events = job.events(self.client_connected)
        first = next(events)  # an error before the first token still gets a plain JSON error answer
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.send_event(shape.chunk({"role": "assistant", "content": "", "refusal": None}))
            for event in itertools.chain([first], events):
                if isinstance(event, str):
                    self.send_event(shape.chunk({"content": event}))
                else:
                    self.send_event(shape.chunk({}, event.finish_reason))
                    if include_usage:
                        self.send_event(shape.usage_chunk(event))
        except APIError as err:
            self.send_event(err.body())
        self.write_chunk(b"data: [DONE]\n\n")
        self.write_chunk(b"")  # the end of a chunked body

    def send_event(self, payload: dict) -> None:
        self.write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_json(self, status: int, payload: dict) -> None:
        # An error sent before the body was read leaves the body in the socket: close the connection.
        # (Any body: a chunked one, or one whose Content-Length is not a number, is unread too.)
        length = self.headers.get("Content-Length", "0").strip()
        unread = not self.body_read and (length != "0" or "Transfer-Encoding" in self.headers)
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", close=unread)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method, URI or headers too long) in
        the API's JSON error shape, not its HTML page. It may run before the headers are parsed."""
        self.log_error("code %d, message %s", code, message)
        text = message or self.responses.get(code, ("error",))[0]
        if code == 501 and self.command:
            text = f"{text}; this server takes GET and POST"
        data = json.dumps(APIError(code, text, code=None).body()).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(data)

    def send_file(self, path: Path) -> None:
        self.send_bytes(200, path.read_bytes(), CONTENT_TYPES[path.suffix] + "; charset=utf-8")

    def send_bytes(self, status: int, data: bytes, content_type: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        log.info("%s %s", self.address_string(), format % args)


ROUTES = {
    ("POST", "/v1/chat/completions"): Handler.chat_completions,
    ("GET", "/v1/models"): Handler.models,
    ("GET", "/health"): Handler.health,
}


def web_files() -> dict[str, Path]:
    """URL path -> file of the web page; only these files are served (none if the page is not installed)."""
    files = {f"/{p.name}": p for p in sorted(WEB.glob("*")) if p.suffix in CONTENT_TYPES}
    return {"/": WEB / "index.html", **files} if "/index.html" in files else files


def build_backend(args: argparse.Namespace) -> Backend:
    if args.backend == "vllm":
        from lalm.vllm_backend import VLLMBackend  # vLLM is optional and GPU-only

        # vLLM holds the LLM on the GPU; the kit's copy only embeds prompts, on the CPU unless told.
        args.device = args.device or "cpu"
        return VLLMBackend(load_model(args), args.vllm_tensor_parallel_size, args.vllm_gpu_memory_utilization,
                           args.vllm_max_model_len)
    return HFBackend(load_model(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lalm.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="0.0.0.0 to accept other machines (set an API key) (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port (default: %(default)s)")
    parser.add_argument("--backlog", type=int, default=DEFAULT_BACKLOG,
                        help="connections the kernel queues before the server accepts them; the kernel caps it "
                        "at net.core.somaxconn (default: %(default)s)")
    parser.add_argument("--api-key", default=os.environ.get("LALM_API_KEY"),
                        help="require 'Authorization: Bearer KEY' on /v1 routes (default: $LALM_API_KEY)")
    parser.add_argument("--served-model-name", help="the model id in /v1/models (default: checkpoint folder name)")
    parser.add_argument("--max-batch", type=int, default=8, help="requests per generation call (default: %(default)s)")
    parser.add_argument("--batch-window-ms", type=float, default=20.0,
                        help="how long an idle worker waits for more requests before generating "
                        "(default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="for requests without one; 0: greedy (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=1.0, help="for requests without one (default: %(default)s)")
    limits = Limits()
    parser.add_argument("--max-tokens", type=int, default=limits.max_tokens,
                        help="largest max_tokens a request may ask for; also the default (default: %(default)s)")
    parser.add_argument("--max-audio-mb", type=float, default=limits.max_audio_bytes / 2**20,
                        help="per clip, as sent (default: %(default)s)")
    parser.add_argument("--max-audio-seconds", type=float, default=limits.max_audio_seconds,
                        help="per clip; lalm.chat has the same flag and default (default: %(default)s)")
    parser.add_argument("--max-messages", type=int, default=limits.max_messages,
                        help="messages per request (default: %(default)s)")
    parser.add_argument("--max-text-chars", type=int, default=limits.max_text_chars,
                        help="characters of text per request, all messages together (default: %(default)s)")
    parser.add_argument("--max-prompt-tokens", type=int, default=limits.max_prompt_tokens,
                        help="tokens of the rendered prompt per request, audio positions included "
                        "(default: %(default)s)")
    parser.add_argument("--max-request-mb", type=float, default=limits.max_request_bytes / 2**20,
                        help="size of a request's JSON body, audio included (default: %(default)s)")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                        help="hf: the kit's model generates; vllm: vLLM generates from the spliced embeddings "
                        "(default: %(default)s)")
    parser.add_argument("--vllm-tensor-parallel-size", type=int, default=1,
                        help="GPUs vLLM splits the LLM over (default: %(default)s)")
    parser.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.85,
                        help="fraction of GPU memory vLLM may take, weights and KV cache (default: %(default)s)")
    parser.add_argument("--vllm-max-model-len", type=int,
                        help="context length vLLM allocates for (default: the LLM's max_position_embeddings)")
    parser.add_argument("--drain-seconds", type=float, default=DEFAULT_DRAIN_SECONDS,
                        help="on SIGTERM, how long requests in flight may take to finish before the server "
                        "exits (default: %(default)s)")
    return parser


def on_sigterm(server: Server, terminated: threading.Event):
    """SIGTERM (docker stop, systemctl stop, kill): stop accepting, then drain and exit 0. The handler
    only asks serve_forever to return, from another thread: an exception raised in the main thread
    could land inside socketserver's request handling, which would log it and serve on, never draining."""
    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the drain short
        terminated.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    return handler


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.max_batch, args.max_tokens, args.max_messages, args.max_text_chars, args.max_prompt_tokens,
           args.backlog) < 1 or args.batch_window_ms < 0 or args.drain_seconds < 0:
        parser.error("--max-batch, --max-tokens, --max-messages, --max-text-chars, --max-prompt-tokens and "
                     "--backlog must be >= 1, --batch-window-ms and --drain-seconds >= 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = App(
        worker=BatchWorker(build_backend(args), args.max_batch, args.batch_window_ms / 1000).start(),
        model_name=args.served_model_name or model_name(args),
        limits=Limits(max_audio_bytes=int(args.max_audio_mb * 2**20), max_audio_seconds=args.max_audio_seconds,
                      max_tokens=args.max_tokens, max_messages=args.max_messages,
                      max_request_bytes=int(args.max_request_mb * 2**20), max_text_chars=args.max_text_chars,
                      max_prompt_tokens=args.max_prompt_tokens),
        api_key=args.api_key,
        default_temperature=args.temperature,
        default_top_p=args.top_p,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and app.api_key is None:
        log.warning("listening on %s without an API key: anyone who can reach it can use the model", args.host)
    server = Server((args.host, args.port), app, args.backlog)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, on_sigterm(server, terminated))
    log.info("serving %r at %s (web page at /, API at /v1)", app.model_name, server.url)
    try:
        server.serve_forever()
        if terminated.is_set():
            log.info("SIGTERM: finishing %d request(s) in flight (at most %g s)", server.in_flight,
                     args.drain_seconds)
            left = server.drain(args.drain_seconds)
            if left:
                log.warning("%d request(s) still running after %g s (--drain-seconds): dropped", left,
                            args.drain_seconds)
            log.info("stopped")
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def cli() -> int:
    """The installed command (see [project.scripts] in pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
