"""Python client of the lvss gRPC server (service ``lvss.v1.Vectorizer``).

    from lvss.client import vectorize, ClientError
    result = vectorize(open("cat.png", "rb").read(), server="127.0.0.1:50051", paths=64,
                       on_progress=lambda p: print(p.stage, p.fraction))
    open("cat.svg", "w").write(result.svg)

``on_preview=`` receives :class:`Preview`: the picture so far as an SVG document, the first as soon
as the server has one (after the colour fit of the structure, in layered mode), then at most about
two a second while the job refines it; without it the request asks for none.

Every failure raises :class:`ClientError` with ``.code`` (a gRPC status name) and a message that
says what to do. grpc is imported only when a call is made.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .messages import STAGE_WORDS, queued_text, stage_label, unreachable_line  # noqa: F401  (one table for every client)

DEFAULT_SERVER = "127.0.0.1:50051"
TOKEN_FILE_ENV = "LVSS_TOKEN_FILE"
CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INVALID_ARGUMENT", "UNAUTHENTICATED", "RESOURCE_EXHAUSTED",
         "CANCELLED", "INTERNAL")
MAX_RESPONSE_BYTES = 256 << 20
# The request options (lvss.options) that Client.vectorize has no keyword for, set through its extra=...:
# stage choices, iteration counts, the fill mode and the quality preset.
from .options import REQUEST_OPTIONS as _REQUEST_OPTIONS  # noqa: E402

EXTRA_OPTIONS = tuple(o.name for o in _REQUEST_OPTIONS if "client" not in o.fronts)


class ClientError(Exception):
    """A call failed. ``code`` is one of CODES; ``message`` says what went wrong and what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code if code in CODES else "INTERNAL"
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the result: its SVG id, its Inkscape label and how many paths it holds."""

    id: str
    label: str
    paths: int


@dataclass
class ClientResult:
    """svg: the whole document; layers back to front; metrics and timings (seconds) by name;
    warnings: what was asked for but not used (e.g. a prompt on a server without CLIP), one
    sentence each."""

    svg: str
    layers: list[LayerInfo] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Progress:
    """What ``on_progress`` receives.

    stage: "queued" while the job waits (``position`` = jobs ahead of it), else the pipeline stage.
    fraction: overall progress in [0, 1], never decreasing within one call.
    """

    stage: str
    fraction: float
    message: str = ""
    position: int | None = None

    @property
    def label(self) -> str:
        """The stage in a designer's words (lvss.messages.STAGE_WORDS): "Fitting shapes", "Waiting for
        the server: 2 jobs ahead"; the same words in ``lvss remote``, its ``--events`` and the Inkscape
        extension."""
        return queued_text(self.position) if self.stage == "queued" else stage_label(self.stage)


@dataclass(frozen=True)
class Preview:
    """What ``on_preview`` receives while the job runs: ``svg``, a whole SVG document of the current
    state (the result's size, one layer of flat-filled paths, 1 decimal; not the final layering),
    ``fraction`` the overall progress when it was taken and ``stage`` the stage that made it."""

    svg: str
    fraction: float
    stage: str = ""

    @property
    def label(self) -> str:
        return stage_label(self.stage)


PREVIEWS = True  # this client knows on_preview (for callers that may meet an older lvss)


def read_token(token: str | None = None, token_file: str | os.PathLike | None = None) -> str | None:
    """The token to send: ``token``, else the file ``token_file``, else the file in $LVSS_TOKEN_FILE."""
    if token is not None:
        return token.strip() or None
    path = token_file if token_file is not None else os.environ.get(TOKEN_FILE_ENV) or None
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except OSError as e:
        raise ClientError("INVALID_ARGUMENT", f"cannot read token file {path}: {e.strerror or e}") from None
    if not value:
        raise ClientError("INVALID_ARGUMENT", f"token file {path} is empty; copy the server's token into it")
    return value


def _translate(err: Any, server: str, timeout: float | None, tls: bool) -> ClientError:
    """A ClientError for a grpc.RpcError, with advice in place of transport jargon."""
    import grpc

    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (err.details() if callable(getattr(err, "details", None)) else "") or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        if details.startswith("the lvss server"):
            return ClientError("UNAVAILABLE", details)
        hint = "" if tls else " (if the server uses TLS, pass its CA certificate with --tls-ca)"
        return ClientError("UNAVAILABLE", unreachable_line(server, hint))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        limit = f"within {timeout:g} s" if timeout is not None else "in time"
        return ClientError("DEADLINE_EXCEEDED", f"the lvss server did not finish {limit}; raise the timeout "
                                                "(--timeout) or ask for fewer paths or a smaller work size")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details.lower():
        return ClientError("RESOURCE_EXHAUSTED", f"the request is larger than the lvss server accepts "
                                                 f"({details}); send a smaller or recompressed image")
    if code == grpc.StatusCode.CANCELLED:
        return ClientError("CANCELLED", f"the request was cancelled{': ' + details if details else ''}")
    if code.name in CODES:
        return ClientError(code.name, details or f"the lvss server answered {code.name}")
    return ClientError("INTERNAL", f"the lvss server failed ({code.name}: {details or 'no details'}); "
                                   "see the server log")


def _options(pb: Any, values: Mapping[str, Any]) -> Any:
    opts = pb.VectorizeOptions()
    for name, value in values.items():
        if value is None:
            continue
        try:
            setattr(opts, name, value)
        except (TypeError, ValueError):
            text = ("mode", "simplify", "segment", "saliency", "fill", "quality")
            kind = "a string" if name in text else "an integer"
            raise ClientError("INVALID_ARGUMENT", f"{name} must be {kind}, got {value!r}") from None
    return opts


class Client:
    """A connection to one lvss server, reusable for many calls (close it, or use ``with``).

    server: "HOST:PORT"; token: sent as ``authorization: Bearer <token>`` (default: read from the
    file in $LVSS_TOKEN_FILE if set); tls_ca: PEM file of the CA that signed the server's
    certificate (turns TLS on).
    """

    def __init__(self, server: str = DEFAULT_SERVER, *, token: str | None = None, tls_ca: str | None = None):
        try:
            import grpc
        except ImportError:  # pragma: no cover - optional dependency
            raise ClientError("INTERNAL", "grpcio is not installed; pip install 'lvss[server]'") from None
        from ._proto import vectorizer_pb2 as pb
        from ._proto import vectorizer_pb2_grpc as pb_grpc

        self.server = server
        self._grpc, self._pb = grpc, pb
        self._token = read_token(token)
        options = [("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
                   ("grpc.max_send_message_length", -1)]
        self._tls = tls_ca is not None
        if self._tls:
            try:
                with open(tls_ca, "rb") as f:
                    ca = f.read()
            except OSError as e:
                raise ClientError("INVALID_ARGUMENT", f"cannot read CA certificate {tls_ca}: {e.strerror or e}") from None
            self._channel = grpc.secure_channel(server, grpc.ssl_channel_credentials(root_certificates=ca), options)
        else:
            self._channel = grpc.insecure_channel(server, options)
        self._stub = pb_grpc.VectorizerStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self._token}")] if self._token else []

    def info(self, timeout: float | None = 10.0) -> dict[str, Any]:
        """Server version, device, loaded models, limits (dict), auth_required, queue_length, busy,
        prompt_supported (a prompt steers the result), qualities (the quality presets it accepts; empty
        from a server older than the option) and default_quality (its preset for requests naming none)."""
        try:
            r = self._stub.GetInfo(self._pb.GetInfoRequest(), timeout=timeout, metadata=self._metadata())
        except self._grpc.RpcError as e:
            raise _translate(e, self.server, timeout, self._tls) from None
        limits = {f.name: int(getattr(r.limits, f.name)) for f in r.limits.DESCRIPTOR.fields}
        return dict(version=r.version, device=r.device, models_loaded=list(r.models_loaded), limits=limits,
                    auth_required=r.auth_required, queue_length=r.queue_length, busy=r.busy,
                    prompt_supported=r.prompt_supported, qualities=list(r.qualities),
                    default_quality=r.default_quality)

    def vectorize(self, image_bytes: bytes, *, prompt: str = "", paths: int | None = None,
                  mode: str | None = None, levels: int | None = None, seed: int | None = None,
                  work_size: int | None = None, saliency_mask: bytes | None = None,
                  timeout: float | None = None, on_progress: Callable[[Progress], None] | None = None,
                  extra: Mapping[str, Any] | None = None, cancel: Any = None,
                  on_preview: Callable[[Preview], None] | None = None) -> ClientResult:
        """See :func:`vectorize`. ``extra`` sets the other VectorizeOptions fields (EXTRA_OPTIONS).
        ``cancel``: a ``threading.Event``; setting it (from any thread) cancels the job on the server,
        and the call raises ClientError CANCELLED. ``on_preview(Preview)``: asks the server for
        previews and receives them (a server older than previews sends none)."""
        pb, grpc = self._pb, self._grpc
        if not isinstance(image_bytes, (bytes, bytearray, memoryview)):
            raise ClientError("INVALID_ARGUMENT", f"image_bytes must be the bytes of an image file, "
                                                  f"got {type(image_bytes).__name__}")
        if not image_bytes:
            raise ClientError("INVALID_ARGUMENT", "the image is empty (0 bytes); give a PNG, JPEG or WebP file")
        unknown = set(extra or {}) - set(EXTRA_OPTIONS)
        if unknown:
            raise ClientError("INVALID_ARGUMENT", f"unknown option(s) {', '.join(sorted(unknown))}; "
                                                  f"known: {', '.join(EXTRA_OPTIONS)}")
        if timeout is not None and timeout <= 0:
            raise ClientError("INVALID_ARGUMENT", f"timeout must be > 0 seconds, got {timeout}")
        values = dict(paths=paths, mode=mode, levels=levels, seed=seed, work_size=work_size, **(extra or {}))
        request = pb.VectorizeRequest(image=bytes(image_bytes), prompt=prompt or "",
                                      saliency_mask=bytes(saliency_mask or b""), options=_options(pb, values),
                                      previews=on_preview is not None)
        call = self._stub.Vectorize(request, timeout=timeout, metadata=self._metadata())
        watcher = _cancel_watcher(call, cancel) if cancel is not None else None
        result = None
        try:
            for event in call:
                kind = event.WhichOneof("event")
                if kind == "result":
                    r = event.result
                    result = ClientResult(
                        svg=r.svg, layers=[LayerInfo(l.id, l.label, l.path_count) for l in r.layers],
                        metrics=dict(r.metrics), timings=dict(r.timings), warnings=list(r.warnings))
                elif kind == "preview":
                    if on_preview is not None:
                        v = event.preview
                        on_preview(Preview(v.svg, float(v.fraction), v.stage))
                elif on_progress is None:
                    continue
                elif kind == "queued":
                    n = event.queued.position
                    on_progress(Progress("queued", 0.0, f"waiting: {n} job(s) ahead", position=n))
                elif kind == "progress":
                    p = event.progress
                    on_progress(Progress(p.stage, float(p.fraction), p.message))
        except grpc.RpcError as e:
            raise _translate(e, self.server, timeout, self._tls) from None
        except BaseException:
            call.cancel()  # a callback raised or the user interrupted: stop the job on the server
            raise
        finally:
            if watcher is not None:
                watcher.set()
        if result is None:
            raise ClientError("INTERNAL", "the lvss server ended the call without a result; see the server log")
        return result


def _cancel_watcher(call: Any, cancel: Any) -> Any:
    """Cancel ``call`` when the event ``cancel`` is set; returns an event that stops the watching."""
    import threading

    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.1):
                call.cancel()
                return

    threading.Thread(target=watch, name="lvss-client-cancel", daemon=True).start()
    return done


def vectorize(image_bytes: bytes, *, server: str = DEFAULT_SERVER, prompt: str = "", paths: int | None = None,
              mode: str | None = None, levels: int | None = None, seed: int | None = None,
              work_size: int | None = None, saliency_mask: bytes | None = None, token: str | None = None,
              timeout: float | None = None, tls_ca: str | None = None,
              on_progress: Callable[[Progress], None] | None = None,
              on_preview: Callable[[Preview], None] | None = None) -> ClientResult:
    """Vectorize an encoded image (PNG, JPEG, WebP bytes) on an lvss server.

    Options left at None use the server's defaults. ``saliency_mask``: encoded greyscale image,
    bright = important. ``timeout``: seconds for the whole call (the job is stopped on the server when
    it passes). ``on_progress(Progress)`` is called as events arrive; if it raises, the call is
    cancelled and the exception propagates. ``on_preview(Preview)``: the picture so far while the job
    runs (see :class:`Preview`); None asks for none. Raises :class:`ClientError`.
    """
    with Client(server, token=token, tls_ca=tls_ca) as client:
        return client.vectorize(image_bytes, prompt=prompt, paths=paths, mode=mode, levels=levels, seed=seed,
                                work_size=work_size, saliency_mask=saliency_mask, timeout=timeout,
                                on_progress=on_progress, on_preview=on_preview)


def get_info(server: str = DEFAULT_SERVER, *, token: str | None = None, timeout: float | None = 10.0,
             tls_ca: str | None = None) -> dict[str, Any]:
    """GetInfo as a dict: version, device, models_loaded, limits, auth_required, queue_length, busy."""
    with Client(server, token=token, tls_ca=tls_ca) as client:
        return client.info(timeout)
