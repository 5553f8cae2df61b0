"""Build and run the gRPC server: binding and TLS, token auth, health and reflection, signals.

Security model: the server binds loopback by default. Any other address needs a token
(``--token-file``) or an explicit ``--insecure``. With a token every call except the health check
must carry ``authorization: Bearer <token>`` metadata; the token is never logged. TLS is used when a
certificate and key are given.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc

from lvss.config import VectorizeConfig

from .service import Limits, RunJob, Servicer

log = logging.getLogger("lvss.server")

SERVICE_NAME = "lvss.v1.Vectorizer"
HEALTH_METHODS = ("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch")


class StartupError(Exception):
    """The server cannot start with these settings; the message says which one to change."""


@dataclass
class ServerOptions:
    """Everything ``lvss serve`` takes. ``token`` is the secret itself (read from --token-file)."""

    host: str = "127.0.0.1"
    port: int = 50051
    device: str = "auto"
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure: bool = False
    grace: float = 10.0
    limits: Limits = field(default_factory=Limits)
    base_config: VectorizeConfig | None = None  # defaults for unset request options, model sources
    extra_threads: int = 8  # handler threads beyond the queue, for GetInfo, health and refusals


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IPs (127.0.0.0/8, ::1); hostnames other than localhost are not."""
    h = host.strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def read_token_file(path: str | Path) -> str:
    """The token in a file (surrounding whitespace dropped); StartupError if missing or empty."""
    p = Path(path)
    try:
        token = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise StartupError(f"token file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StartupError(f"cannot read token file {p}: {e}") from None
    if not token:
        raise StartupError(f"token file {p} is empty; put a long random string in it "
                           "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if any(c.isspace() for c in token):
        raise StartupError(f"token in {p} contains whitespace; use a single word")
    return token


def check_options(opts: ServerOptions) -> None:
    """Refuse unsafe or inconsistent settings before anything is loaded."""
    if not is_loopback(opts.host) and opts.token is None and not opts.insecure:
        raise StartupError(
            f"refusing to listen on {opts.host} without a token: anyone who can reach this address "
            "could use the server. Pass --token-file F (clients send the same token), or --insecure "
            "if the network is trusted, or bind 127.0.0.1")
    if (opts.tls_cert is None) != (opts.tls_key is None):
        raise StartupError("TLS needs both --tls-cert and --tls-key")
    if not 0 <= opts.port <= 65535:
        raise StartupError(f"--port must be between 0 and 65535, got {opts.port}")
    if opts.limits.max_queue < 0:
        raise StartupError(f"--max-queue must be >= 0, got {opts.limits.max_queue}")
    if opts.grace < 0:
        raise StartupError(f"--grace must be >= 0 seconds, got {opts.grace}")


def resolve_device(requested: str) -> str:
    """"cpu" or "cuda" for the server's one worker (lvss.models decides; StartupError if unusable)."""
    from lvss.models import ModelError, resolve_device as _resolve

    try:
        dev = _resolve(requested)
    except ModelError as e:
        raise StartupError(str(e)) from None
    return "cuda" if dev.type == "cuda" else "cpu"


def _model_name(spec) -> str:
    value = spec.value.rstrip("/")
    return f"{spec.kind}:{os.path.basename(value) if spec.location.startswith('local') else value}"


def preload_models(cfg: VectorizeConfig) -> list[str]:
    """Load every model the server is configured with, once, before the first job.

    The models land in the process-wide cache of :mod:`lvss.models`, where the pipeline finds them.
    Returns their names (e.g. "sam:sam_vit_b.pth"); empty when only classical stages are set up.
    Raises StartupError when a configured model cannot be loaded.
    """
    from lvss import stages
    from lvss.config import ConfigError
    from lvss.models import model_spec

    loaded = []
    try:
        _, spec, _ = stages.simplify_choice(cfg)
        if spec is not None:
            stages.get_simplifier(cfg)
            loaded.append(_model_name(spec))
        _, spec, _ = stages.segment_choice(cfg)
        if spec is not None:
            stages.get_segmenter(cfg)
            loaded.append(_model_name(spec))
        spec = model_spec("clip", cfg.saliency.clip_model)  # prompts come per request: load it now
        if spec is not None:
            stages.get_saliency(replace(cfg, saliency=replace(cfg.saliency, source="clip")))
            loaded.append(_model_name(spec))
    except ConfigError as e:  # ModelError included
        raise StartupError(f"cannot load a configured model: {e}") from None
    return loaded


class TokenInterceptor(grpc.ServerInterceptor):
    """Calls (except health checks) need ``authorization: Bearer <token>``; else UNAUTHENTICATED."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode("utf-8")

        def deny_missing(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "this lvss server needs a token: send the one from the server's --token-file "
                          "(lvss remote --token-file F, or set LVSS_TOKEN_FILE)")

        def deny_wrong(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "the token was not accepted by the lvss server; check the token file")

        self._deny = {}
        for name, fn in (("missing", deny_missing), ("wrong", deny_wrong)):
            self._deny[name] = {
                (False, False): grpc.unary_unary_rpc_method_handler(fn),
                (False, True): grpc.unary_stream_rpc_method_handler(fn),
                (True, False): grpc.stream_unary_rpc_method_handler(fn),
                (True, True): grpc.stream_stream_rpc_method_handler(fn),
            }

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method in HEALTH_METHODS:
            return continuation(handler_call_details)
        got = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                got = value.encode("utf-8") if isinstance(value, str) else value
        if got is not None and hmac.compare_digest(got, self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        kind = (handler.request_streaming, handler.response_streaming)
        return self._deny["missing" if got is None else "wrong"][kind]


@dataclass
class Running:
    """A started server: the gRPC server, its port, the servicer and the health servicer."""

    server: grpc.Server
    port: int
    servicer: Servicer
    health: object
    tls: bool

    def shutdown(self, grace: float) -> None:
        """Health NOT_SERVING, refuse new calls, let the running job finish (or cancel it), stop."""
        self.health.enter_graceful_shutdown()
        self.servicer.begin_shutdown()
        running = self.servicer.queue.running
        finished = self.servicer.drain(grace)
        if running is not None:
            log.info("shutdown: running job %s %s", running.id, "finished" if finished else "cancelled")
        self.server.stop(grace=1.0).wait(5.0)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise StartupError(f"cannot read {what} {path}: {e.strerror or e}") from None


def start(opts: ServerOptions, run_job: RunJob | None = None, models: list[str] | None = None,
          device: str | None = None) -> Running:
    """Build, bind and start a server; returns without blocking. StartupError on bad settings."""
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    from lvss._proto import vectorizer_pb2 as pb
    from lvss._proto import vectorizer_pb2_grpc as pb_grpc

    check_options(opts)
    device = device or resolve_device(opts.device)
    base = (opts.base_config or VectorizeConfig()).with_(device=device)
    if models is None:
        models = preload_models(base) if run_job is None else []
    lim = opts.limits
    try:
        servicer = Servicer(run_job, device=device, limits=lim, models=models, base_config=base,
                            auth_required=opts.token is not None)
    except ImportError as e:
        raise StartupError(f"cannot load the lvss pipeline ({e}); is lvss installed completely?") from None
    threads = lim.max_queue + 1 + opts.extra_threads
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lvss-rpc"),
        interceptors=[TokenInterceptor(opts.token)] if opts.token else [],
        options=[("grpc.max_receive_message_length", lim.max_message_bytes),
                 ("grpc.max_send_message_length", lim.max_message_bytes),
                 ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=threads,
    )
    pb_grpc.add_VectorizerServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True,
                                            experimental_thread_pool=futures.ThreadPoolExecutor(1))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (pb.DESCRIPTOR.services_by_name["Vectorizer"].full_name,
         health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)

    host = opts.host
    address = f"[{host}]:{opts.port}" if ":" in host and not host.startswith("[") else f"{host}:{opts.port}"
    tls = opts.tls_cert is not None
    try:
        if tls:
            creds = grpc.ssl_server_credentials([(_read(opts.tls_key, "TLS key"), _read(opts.tls_cert, "TLS certificate"))])
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise StartupError(f"cannot listen on {address} ({e}); is another server using the port?") from None
    if not port:
        raise StartupError(f"cannot listen on {address}; is another server using the port?")
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return Running(server, port, servicer, health_servicer, tls)


def serve(opts: ServerOptions, run_job: RunJob | None = None) -> int:
    """Run until SIGTERM/SIGINT, then shut down gracefully; returns the exit status (0)."""
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum, frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running = start(opts, run_job)
    host = opts.host
    print(f"lvss server listening on {host}:{running.port} (device {running.servicer.device}, "
          f"{'TLS' if running.tls else 'plaintext'}, {'token required' if opts.token else 'no token'}, "
          f"queue {opts.limits.max_queue})", flush=True)
    log.info("serving on %s:%d device=%s tls=%s auth=%s max_queue=%d models=%s", host, running.port,
             running.servicer.device, running.tls, "token" if opts.token else "none", opts.limits.max_queue,
             ",".join(running.servicer.models) or "-")
    while not stop.wait(0.5):
        pass
    log.info("%s: shutting down (grace %.1fs)", received[0] if received else "stop", opts.grace)
    running.shutdown(opts.grace)
    log.info("stopped")
    sys.stdout.flush()
    return 0
