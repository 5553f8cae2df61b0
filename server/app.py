"""Build and run the gRPC server: binding and TLS, token auth, health and reflection, signals.

Security model: the server binds loopback by default. Any other address needs a token
(``--token-file``) or an explicit ``--insecure``. With a token every call except the health check
must carry ``authorization: Bearer <token>`` metadata; the token is never logged. TLS is used when a
certificate and key are given.

Staying reachable under load (:class:`CallGate`). gRPC's synchronous server gives every call a
thread from its pool from the moment the call's headers arrive, and a unary method waits in that
thread for the request message; a global cap on concurrent calls (``maximum_concurrent_rpcs``) then
lets anyone who opens calls and never sends their message lock every other caller out, health
checks included. So the server has no global cap. Instead the gate, which runs on the headers
alone, before any message is read:

* passes health checks straight through, uncounted, so they answer whatever the load;
* refuses a call without the right token at once, with a handler that never waits for the
  message (UNAUTHENTICATED), so an unauthenticated client cannot hold a thread or a place;
* refuses a Vectorize call at once while the job queue is full (RESOURCE_EXHAUSTED), before its
  message is even received, so a refusal costs the same for a 1 KB and a 60 MB image;
* gives every other call one of a fixed number of places (Vectorize: the running job, the queue and
  a few calls being checked; client-streaming calls such as reflection, which a client may keep
  open: ``STREAM_PLACES``; everything else, e.g. GetInfo: ``extra_threads``) and refuses the rest at
  once with RESOURCE_EXHAUSTED. The thread pool is larger than all places together, so threads
  remain for health checks and refusals;
* cancels a call whose request message has not arrived within ``Limits.receive_seconds``, so even an
  authenticated client cannot hold places for ever.

Connections are also bounded (streams per connection, keepalive pings to find dead peers, idle
connections closed).
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import signal
import ssl
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc

from lvss.config import VectorizeConfig

from .service import Limits, RunJob, Servicer, busy_message

log = logging.getLogger("lvss.server")

SERVICE_NAME = "lvss.v1.Vectorizer"
HEALTH_METHODS = ("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch")
VECTORIZE_METHOD = f"/{SERVICE_NAME}/Vectorize"
CHECKING_PLACES = 4  # Vectorize calls being received or checked at once, beyond the queue
STREAM_PLACES = 4  # open client-streaming calls (server reflection)
HEALTH_THREADS = 4  # pool threads no counted call can take: health checks and refusals


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
    extra_threads: int = 8  # places for unary calls other than Vectorize and health (GetInfo)
    threads: int | None = None  # CPU threads for the worker (None: lvss.threads.default_threads)
    quality: str = "balanced"  # preset for requests that name none (lvss.config.QUALITY_PRESETS)


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
    if opts.threads is not None and opts.threads <= 0:
        raise StartupError(f"--threads must be a positive number of threads, got {opts.threads}")
    if opts.limits.receive_seconds <= 0:
        raise StartupError(f"--receive-timeout must be > 0 seconds, got {opts.limits.receive_seconds}")
    from lvss.config import QUALITY_PRESETS

    if opts.quality not in QUALITY_PRESETS:
        raise StartupError(f"--quality must be one of {', '.join(QUALITY_PRESETS)}, got {opts.quality!r}")


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


def _refusal(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler that ends the call with ``code`` at once, without waiting for the request message
    (request-streaming, so gRPC calls it as soon as the call starts; the wire format of a call does
    not depend on whether the server reads it as a stream)."""

    def refuse(request_iterator, context):
        context.abort(code, message)

    return grpc.stream_stream_rpc_method_handler(refuse)


class _Places:
    """A fixed number of places for open calls; ``take`` returns a release function or None."""

    def __init__(self, count: int):
        self.count = count
        self._free = count
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            if self._free <= 0:
                return None
            self._free -= 1
        done = []

        def release() -> None:
            with self._lock:
                if not done:  # called from the call's end callback and its handler: count once
                    done.append(True)
                    self._free += 1

        return release


class _Watchdog:
    """Cancels calls whose request message has not arrived in time (one thread for all calls)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._calls: dict[int, tuple[float, object, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = 0
        self._thread = threading.Thread(target=self._run, name="lvss-watchdog", daemon=True)
        self._thread.start()

    def watch(self, context, method: str) -> int:
        with self._lock:
            self._next += 1
            self._calls[self._next] = (time.monotonic() + self.timeout, context, method)
            return self._next

    def unwatch(self, key: int) -> None:
        with self._lock:
            self._calls.pop(key, None)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        tick = min(0.5, self.timeout / 4)
        while not self._stop.wait(tick):
            now = time.monotonic()
            with self._lock:
                late = [(k, v) for k, v in self._calls.items() if v[0] <= now]
                for k, _ in late:
                    del self._calls[k]
            for _, (_, context, method) in late:
                log.info("cancelled %s from %s: its request message did not arrive within %.0fs",
                         method, context.peer(), self.timeout)
                context.cancel()


class CallGate(grpc.ServerInterceptor):
    """Token check and places for open calls, decided from a call's headers (see the module doc)."""

    def __init__(self, token: str | None, vectorize_places: int, other_places: int, receive_seconds: float,
                 queue_full=None, queue_full_message: str = "the server is busy; retry in a little while",
                 stream_places: int = STREAM_PLACES):
        self._expected = f"Bearer {token}".encode("utf-8") if token is not None else None
        self.streams = _Places(stream_places)
        self._queue_full = queue_full  # () -> bool, or None
        self._refuse_full = _refusal(grpc.StatusCode.RESOURCE_EXHAUSTED, queue_full_message)
        self.vectorize = _Places(vectorize_places)
        self.other = _Places(other_places)
        self.watchdog = _Watchdog(receive_seconds)
        self._missing = _refusal(grpc.StatusCode.UNAUTHENTICATED,
                                 "this lvss server needs a token: send the one from the server's --token-file "
                                 "(lvss remote --token-file F, or set LVSS_TOKEN_FILE)")
        self._wrong = _refusal(grpc.StatusCode.UNAUTHENTICATED,
                               "the token was not accepted by the lvss server; check the token file")
        self._busy_vectorize = _refusal(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the server is busy: {vectorize_places} vectorize calls are open (the running job, the queue "
            "and calls being received); retry in a little while")
        self._busy_other = _refusal(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"the server is busy: {other_places} calls are open; retry in a little while")
        self._busy_streams = _refusal(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      f"the server is busy: {stream_places} streaming calls (e.g. reflection) "
                                      "are open; close one or retry in a little while")

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method in HEALTH_METHODS:
            return continuation(handler_call_details)
        if self._expected is not None:
            got = None
            for key, value in handler_call_details.invocation_metadata or ():
                if key == "authorization":
                    got = value.encode("utf-8") if isinstance(value, str) else value
            if got is None:
                return self._missing
            if not hmac.compare_digest(got, self._expected):
                return self._wrong
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        vectorize = method == VECTORIZE_METHOD
        if vectorize and self._queue_full is not None and self._queue_full():
            return self._refuse_full  # the servicer checks again when it reserves a place
        if vectorize:
            places, busy = self.vectorize, self._busy_vectorize
        elif handler.request_streaming:
            places, busy = self.streams, self._busy_streams
        else:
            places, busy = self.other, self._busy_other
        release = places.take()
        if release is None:
            return busy
        return self._wrap(handler, release, method)

    def _first_message(self, request_iterator, context, method: str):
        key = self.watchdog.watch(context, method)
        try:
            request = next(request_iterator, None)
        finally:
            self.watchdog.unwatch(key)
        if request is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call ended before its request message arrived")
        return request

    def _wrap(self, handler: grpc.RpcMethodHandler, release, method: str) -> grpc.RpcMethodHandler:
        """The same method as a request-streaming handler (called at once, so the place is given
        back whatever happens: when the call ends, and when the handler returns)."""
        if handler.request_streaming:
            inner = handler.stream_stream or handler.stream_unary

            def argument(it, context):
                return it
        else:
            inner = handler.unary_stream or handler.unary_unary

            def argument(it, context):
                return self._first_message(it, context, method)

        def hold(context) -> None:
            if not context.add_callback(release):
                release()  # the call is already over

        if handler.response_streaming:
            def stream(request_iterator, context):
                try:
                    yield from inner(argument(request_iterator, context), context)
                finally:
                    release()

            def behavior(request_iterator, context):
                hold(context)
                return stream(request_iterator, context)

            return grpc.stream_stream_rpc_method_handler(behavior, handler.request_deserializer,
                                                         handler.response_serializer)

        def unary(request_iterator, context):
            hold(context)
            try:
                return inner(argument(request_iterator, context), context)
            finally:
                release()

        return grpc.stream_unary_rpc_method_handler(unary, handler.request_deserializer,
                                                    handler.response_serializer)


@dataclass
class Running:
    """A started server: the gRPC server, its port, the servicer and the health servicer."""

    server: grpc.Server
    port: int
    servicer: Servicer
    health: object
    tls: bool
    gate: CallGate | None = None
    threads: int = 1

    def shutdown(self, grace: float, hurry: threading.Event | None = None) -> None:
        """Health NOT_SERVING, refuse new calls, let the running job finish (or cancel it), stop.

        ``hurry``: set it (e.g. on a second signal) to cancel the running job before ``grace`` ends.
        """
        self.health.enter_graceful_shutdown()
        self.servicer.begin_shutdown()
        running = self.servicer.queue.running
        finished = self.servicer.drain(grace, hurry=hurry)
        if running is not None:
            log.info("shutdown: running job %s %s", running.id, "finished" if finished else "cancelled")
        self.server.stop(grace=1.0).wait(5.0)
        if self.gate is not None:
            self.gate.watchdog.stop()


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise StartupError(f"cannot read {what} {path}: {e.strerror or e}") from None


def check_tls_files(cert: str, key: str) -> tuple[bytes, bytes]:
    """Read a PEM certificate chain and its private key and check that they belong together.

    Returns (certificate bytes, key bytes); StartupError names the file and the problem (unreadable,
    not PEM, encrypted key, key of another certificate), so it is never taken for a busy port.
    """
    cert_pem, key_pem = _read(cert, "TLS certificate"), _read(key, "TLS key")
    if b"-----BEGIN" not in cert_pem or b"CERTIFICATE-----" not in cert_pem:
        raise StartupError(f"--tls-cert {cert} is not a PEM certificate (no BEGIN CERTIFICATE line)")
    if b"PRIVATE KEY-----" not in key_pem:
        raise StartupError(f"--tls-key {key} is not a PEM private key (no BEGIN ... PRIVATE KEY line)")

    def no_passphrase():
        raise StartupError(f"--tls-key {key} is encrypted; gRPC cannot ask for its passphrase, so give an "
                           "unencrypted key (e.g. openssl pkey -in KEY -out KEY.plain)")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key, password=no_passphrase)
    except ssl.SSLError as e:
        text = f"{e.reason or ''} {e}".upper()
        if "KEY_VALUES_MISMATCH" in text or "MISMATCH" in text:
            raise StartupError(f"the TLS key {key} does not belong to the certificate {cert}; give the key "
                               "the certificate was made with") from None
        raise StartupError(f"cannot use --tls-cert {cert} with --tls-key {key}: {e.reason or e}") from None
    except OSError as e:
        raise StartupError(f"cannot read the TLS files: {e.strerror or e}") from None
    return cert_pem, key_pem


def apply_threads(threads: int | None) -> int:
    """The worker's CPU threads (lvss.threads policy, one worker per server); StartupError if invalid."""
    from lvss import threads as policy

    try:
        return policy.apply(threads, workers=1)
    except ValueError as e:
        raise StartupError(str(e)) from None


def start(opts: ServerOptions, run_job: RunJob | None = None, models: list[str] | None = None,
          device: str | None = None) -> Running:
    """Build, bind and start a server; returns without blocking. StartupError on bad settings."""
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    from lvss._proto import vectorizer_pb2 as pb
    from lvss._proto import vectorizer_pb2_grpc as pb_grpc

    check_options(opts)
    if opts.tls_cert is not None:
        cert_pem, key_pem = check_tls_files(opts.tls_cert, opts.tls_key)
    n_threads = apply_threads(opts.threads)
    device = device or resolve_device(opts.device)
    base = (opts.base_config or VectorizeConfig()).with_(device=device)
    if models is None:
        models = preload_models(base) if run_job is None else []
    if run_job is None:
        from lvss.pipeline import preload

        preload()   # the stages' first-use imports, not on the first request's clock
    lim = opts.limits
    try:
        servicer = Servicer(run_job, device=device, limits=lim, models=models, base_config=base,
                            auth_required=opts.token is not None, quality=opts.quality)
    except ImportError as e:
        raise StartupError(f"cannot load the lvss pipeline ({e}); is lvss installed completely?") from None
    vectorize_places = lim.max_queue + 1 + CHECKING_PLACES
    gate = CallGate(opts.token, vectorize_places, opts.extra_threads, lim.receive_seconds,
                    queue_full=servicer.queue.full, queue_full_message=busy_message(lim.max_queue))
    pool = vectorize_places + opts.extra_threads + STREAM_PLACES + HEALTH_THREADS
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=pool, thread_name_prefix="lvss-rpc"),
        interceptors=[gate],
        options=[("grpc.max_receive_message_length", lim.max_message_bytes),
                 ("grpc.max_send_message_length", lim.max_message_bytes),
                 ("grpc.so_reuseport", 0),
                 ("grpc.max_concurrent_streams", 2 * vectorize_places),  # per connection
                 ("grpc.keepalive_time_ms", 60_000),  # ping quiet connections, drop dead peers
                 ("grpc.keepalive_timeout_ms", 20_000),
                 ("grpc.max_connection_idle_ms", 10 * 60_000)],  # close connections without calls
    )
    # Vectorize is registered without a request deserializer: the servicer parses the message,
    # so a malformed one (a prompt that is not UTF-8) is INVALID_ARGUMENT with a reason.
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {
        "Vectorize": grpc.unary_stream_rpc_method_handler(
            servicer.Vectorize, request_deserializer=None,
            response_serializer=pb.VectorizeEvent.SerializeToString),
        "GetInfo": grpc.unary_unary_rpc_method_handler(
            servicer.GetInfo, request_deserializer=pb.GetInfoRequest.FromString,
            response_serializer=pb.GetInfoResponse.SerializeToString),
    }),))
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
            creds = grpc.ssl_server_credentials([(key_pem, cert_pem)])
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as e:
        gate.watchdog.stop()
        raise StartupError(f"cannot listen on {address} ({e}); is another server using the port?") from None
    if not port:
        gate.watchdog.stop()
        raise StartupError(f"cannot listen on {address}; is another server using the port, or is the "
                           "address not one of this machine's?")
    server.start()
    if opts.token is not None and not tls and not is_loopback(host):
        log.warning("the token travels in clear text: %s is not a loopback address and TLS is off, so anyone "
                    "who can see the traffic can read the token and use the server; add --tls-cert and "
                    "--tls-key", host)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return Running(server, port, servicer, health_servicer, tls, gate, n_threads)


def serve(opts: ServerOptions, run_job: RunJob | None = None) -> int:
    """Run until SIGTERM/SIGINT, then shut down gracefully; returns the exit status (0).

    A second SIGTERM/SIGINT during the shutdown cancels the running job at once instead of letting
    it use the rest of the grace period.
    """
    stop = threading.Event()
    hurry = threading.Event()
    received: list[str] = []

    def on_signal(signum, frame):
        received.append(signal.Signals(signum).name)
        if stop.is_set():
            if not hurry.is_set():
                log.info("%s again: cancelling the running job now", received[-1])
            hurry.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running = start(opts, run_job)
    host = opts.host
    print(f"lvss server listening on {host}:{running.port} (device {running.servicer.device}, "
          f"{'TLS' if running.tls else 'plaintext'}, {'token required' if opts.token else 'no token'}, "
          f"queue {opts.limits.max_queue}, {running.threads} thread{'s' if running.threads != 1 else ''})",
          flush=True)
    log.info("serving on %s:%d device=%s tls=%s auth=%s max_queue=%d models=%s quality=%s", host, running.port,
             running.servicer.device, running.tls, "token" if opts.token else "none", opts.limits.max_queue,
             ",".join(running.servicer.models) or "-", running.servicer.quality)
    while not stop.wait(0.5):
        pass
    log.info("%s: shutting down (grace %.1fs; send it again to cancel the running job now)",
             received[0] if received else "stop", opts.grace)
    running.shutdown(opts.grace, hurry)
    log.info("stopped")
    sys.stdout.flush()
    return 0
