"""The ``lvss.v1.Vectorizer`` servicer: request checks, a bounded job queue and one worker per device.

Flow of one ``Vectorize`` call (each call runs on its own gRPC handler thread; the token check and
the cap on open calls happen before that, in :class:`server.app.CallGate`):

1. ``_admit``, cheapest checks first: the request message is parsed here (a malformed one, e.g. a
   prompt that is not UTF-8, is INVALID_ARGUMENT), then the byte sizes, the options
   (→ :class:`lvss.config.VectorizeConfig`), then a place in the queue is reserved (a full queue
   answers RESOURCE_EXHAUSTED in microseconds, whatever the image), and only then the image's and
   mask's headers are read (:func:`lvss.io.inspect_image_bytes`: size and format, no pixels).
2. :class:`JobQueue` holds at most ``max_queue`` waiting jobs behind the running one. Waiting jobs
   hold their encoded bytes only, and get ``queued`` events whenever their place changes.
3. The worker thread runs jobs one at a time: it decodes the image straight to about the working
   resolution (:func:`lvss.io.decode_image_reduced`, with cancel points), runs ``run_job`` (default
   :func:`lvss.pipeline.run`), whose progress callback feeds the call's event queue, and scales the
   scene back to the image's full size. An image that turns out corrupt when decoded ends the call
   with INVALID_ARGUMENT then.
4. When the call ends early (client cancel, disconnect or deadline), gRPC fires the call's
   termination callback: a waiting job leaves the queue, a running one gets its ``cancel`` event set
   and decoding or the pipeline stops at its next check.

Memory ceiling per job: a waiting job holds its encoded image and mask (each at most
``max_image_bytes``). The running job adds one decoded raster of at most 4 bytes x ``max_pixels``
(PNG, WebP, BMP, TIFF, GIF are decoded at full size once and reduced band by band; JPEG is decoded
at 1/2 to 1/8 scale by libjpeg, so far less), freed as soon as the working-resolution image exists,
plus the pipeline's arrays at the working resolution (``work_size`` <= ``max_work_size``). A call
being received holds its request message (at most ``max_message_bytes``; gRPC refuses a compressed
message whose inflated size would exceed that without inflating the rest), and at most
``max_queue + 1 + app.CHECKING_PLACES`` Vectorize calls are open at once (app.CallGate), so the
server as a whole holds at most that many messages, ``max_queue + 1`` encoded images and one
full-size raster (:func:`lvss.io.decode_image_reduced` decodes one image at a time per process).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import grpc
import numpy as np

from lvss._proto import vectorizer_pb2 as pb
from lvss._proto import vectorizer_pb2_grpc as pb_grpc
from lvss.config import QUALITY_PRESETS, ConfigError, VectorizeConfig, apply_quality, check_quality
from lvss.options import BY_NAME, REQUEST_OPTIONS, SERVER_LIMITS, get_value, set_value
from lvss.types import ProgressCallback, ProgressEvent, VectorizeResult

log = logging.getLogger("lvss.server")

MiB = 1 << 20
_LEARNED = {"sds": ("simplify", "a Stable Diffusion model", "--sd-model"),
            "sam": ("segment", "a SAM checkpoint", "--sam-checkpoint"),
            "clip": ("saliency", "a CLIP model", "--clip-model")}

RunJob = Callable[[np.ndarray, VectorizeConfig, ProgressCallback, threading.Event], VectorizeResult]
"""``run_job(image (H, W, 4) uint8, cfg, progress, cancel) -> VectorizeResult`` (as lvss.pipeline.run).
When the client asked for previews, ``progress`` has ``wants_previews = True``, which
:func:`lvss.pipeline.run` reads: events carrying ``preview`` (a scene) then become ``preview`` events."""

PREVIEW_EVERY = 0.5   # seconds: at most about two preview events a second per job
PREVIEW_PRECISION = 1  # decimals of a preview's coordinates (plenty for a picture shown small)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Sizes in bytes, pixels = width × height of the decoded image."""

    max_image_bytes: int = 64 * MiB
    max_pixels: int = 50_000_000
    max_paths: int = SERVER_LIMITS["max_paths"]
    max_prompt_chars: int = 1000
    max_work_size: int = SERVER_LIMITS["max_work_size"]
    max_iters: int = SERVER_LIMITS["max_iters"]
    max_queue: int = 8
    receive_seconds: float = 120.0  # a call's request message must arrive within this time

    @property
    def max_message_bytes(self) -> int:
        """Transport limit for one request: an image at its limit plus a mask of up to an eighth of
        it (at least 1 MiB) and the options. Image and mask are each still checked against
        ``max_image_bytes``; this bounds what one call can make the server hold, compressed or not."""
        return self.max_image_bytes + max(MiB, self.max_image_bytes // 8)

    def to_proto(self) -> pb.Limits:
        return pb.Limits(max_image_bytes=self.max_image_bytes, max_pixels=self.max_pixels,
                         max_paths=self.max_paths, max_prompt_chars=self.max_prompt_chars,
                         max_work_size=self.max_work_size, max_iters=self.max_iters,
                         max_queue=self.max_queue, max_message_bytes=self.max_message_bytes)


class RequestError(ValueError):
    """A request the server cannot run; ``code`` is the gRPC status to answer with."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        super().__init__(message)
        self.code = code


class QueueFull(Exception):
    pass


def busy_message(max_queue: int) -> str:
    return (f"the server is busy: {max_queue} job(s) already wait for the device; "
            "retry in a little while")


class QueueClosed(Exception):
    pass


@dataclass
class _Failure:
    """Ends a call's stream with a status instead of a result."""

    code: grpc.StatusCode
    message: str


_END = object()  # last item of a job's event queue


@dataclass(eq=False)
class Job:
    """One admitted request. ``events`` carries pb.VectorizeEvent / _Failure / _END to the handler.

    ``data``/``mask_data``: the encoded image and mask as sent (decoded only when the job starts);
    ``size``: the image's upright (width, height) from its header.
    """

    data: bytes
    cfg: VectorizeConfig
    nbytes: int
    summary: str
    size: tuple[int, int] = (0, 0)
    mask_data: bytes = b""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    mask_file: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    events: "queue.Queue[Any]" = field(default_factory=queue.Queue)
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    cancel_reason: str | None = None  # "client" | "shutdown"
    cancel_requested_at: float | None = None
    position: int = 0
    finished: bool = False
    warnings: list = field(default_factory=list)  # sentences sent with the result
    previews: bool = False  # the client asked for preview events (VectorizeRequest.previews)

    def request_cancel(self, reason: str) -> None:
        if not self.cancel.is_set():
            self.cancel_reason = reason
            self.cancel_requested_at = time.monotonic()
            self.cancel.set()

    def set_position(self, position: int) -> None:
        if position >= 1 and position != self.position:
            self.events.put(pb.VectorizeEvent(queued=pb.Queued(position=position)))
        self.position = position

    def cleanup(self) -> None:
        if self.mask_file:
            try:
                os.unlink(self.mask_file)
            except OSError:
                pass
            self.mask_file = None


class JobQueue:
    """At most ``max_waiting`` jobs wait behind the running one; one worker thread runs them in order."""

    def __init__(self, max_waiting: int, execute: Callable[[Job], None], name: str = "lvss-worker"):
        if max_waiting < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_waiting}")
        self.max_waiting = max_waiting
        self._execute = execute
        self._cond = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._reserved = 0  # places promised to calls still checking their request
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> Job | None:
        return self._running

    def __len__(self) -> int:
        return len(self._waiting)

    def reserve(self) -> None:
        """Promise a place to a job about to be submitted; raises QueueFull or QueueClosed.

        A reserved place counts as taken until :meth:`submit` (``reserved=True``) fills it or
        :meth:`release` gives it back.
        """
        with self._cond:
            if self._closed:
                raise QueueClosed()
            if self._full():
                raise QueueFull()
            self._reserved += 1

    def full(self) -> bool:
        """True when :meth:`reserve` would raise QueueFull now (a hint: the answer may change at once)."""
        with self._cond:
            return self._full()

    def _full(self) -> bool:
        # one job runs and max_waiting wait behind it; places reserved by calls still checking their
        # request count as taken (an idle queue admits max_waiting + 1 at once, like a busy one)
        taken = len(self._waiting) + self._reserved + (self._running is not None)
        return taken >= self.max_waiting + 1

    def release(self) -> None:
        """Give back a place taken by :meth:`reserve`."""
        with self._cond:
            self._reserved = max(0, self._reserved - 1)

    def submit(self, job: Job, reserved: bool = False) -> None:
        """Append a job (into its reserved place if ``reserved``); raises QueueFull or QueueClosed
        without queueing it (a reserved place is given back then)."""
        with self._cond:
            if reserved:
                self._reserved = max(0, self._reserved - 1)
            if self._closed:
                raise QueueClosed()
            if not reserved and self._full():
                raise QueueFull()
            self._waiting.append(job)
            self._renumber()
            self._cond.notify_all()

    def withdraw(self, job: Job) -> bool:
        """Take a job out of the queue before it started; False if it is not waiting (any more)."""
        with self._cond:
            try:
                self._waiting.remove(job)
            except ValueError:
                return False
            self._renumber()
            return True

    def close(self) -> list[Job]:
        """Accept no more jobs; returns the jobs that were still waiting (removed from the queue)."""
        with self._cond:
            self._closed = True
            left = list(self._waiting)
            self._waiting.clear()
            self._cond.notify_all()
            return left

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs or waits; True if that happened within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._running is not None or self._waiting:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _renumber(self) -> None:
        ahead = 1 if self._running is not None else 0
        for i, job in enumerate(self._waiting):
            job.set_position(ahead + i)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                job = self._waiting.popleft()
                self._running = job
                self._renumber()
            try:
                self._execute(job)
            except Exception:  # the executor handles job errors; this only guards the worker itself
                log.exception("worker: unexpected error around job %s", job.id)
            finally:
                release_free_memory()  # before the job counts as done: an idle server is trimmed
                with self._cond:
                    self._running = None
                    self._renumber()
                    self._cond.notify_all()


def layers_of_svg(svg: str) -> list[pb.LayerInfo]:
    """The top-level Inkscape layers (``<g inkscape:groupmode="layer">``) of an SVG, back to front; a
    layer's path count includes its sub-layers' (lvss's "details")."""
    from lxml import etree

    svg_ns = "http://www.w3.org/2000/svg"
    ink_ns = "http://www.inkscape.org/namespaces/inkscape"
    root = etree.fromstring(svg.encode("utf-8"))
    out = []

    def is_layer(e) -> bool:
        return e.tag == f"{{{svg_ns}}}g" and e.get(f"{{{ink_ns}}}groupmode") == "layer"

    for g in root.iter(f"{{{svg_ns}}}g"):
        if is_layer(g) and not any(is_layer(a) for a in g.iterancestors()):
            out.append(pb.LayerInfo(id=g.get("id") or "", label=g.get(f"{{{ink_ns}}}label") or "",
                                    path_count=sum(1 for _ in g.iter(f"{{{svg_ns}}}path"))))
    return out


def _pipeline_run() -> RunJob:
    from lvss.pipeline import run

    def run_job(image, cfg, progress, cancel):
        return run(image, cfg, progress=progress, cancel=cancel)

    return run_job


def _is_cancellation(exc: BaseException) -> bool:
    try:
        from lvss.pipeline import Cancelled
    except ImportError:
        return False
    return isinstance(exc, Cancelled)


def _varint(buf: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    return None, pos


def _invalid_utf8_field(raw: bytes, descriptor, prefix: str = "") -> str | None:
    """Name of the first string field of a serialized message that is not valid UTF-8, else None.

    Walks the protobuf wire format (each step moves forward, so the loop ends); only fields the
    descriptor declares as strings or messages are looked into.
    """
    pos, n = 0, len(raw)
    while pos < n:
        key, pos = _varint(raw, pos)
        if key is None:
            return None
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(raw, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(raw, pos)
            if length is None or pos + length > n:
                return None
            f = descriptor.fields_by_number.get(number)
            if f is not None and f.type == f.TYPE_STRING:
                try:
                    raw[pos:pos + length].decode("utf-8")
                except UnicodeDecodeError:
                    return prefix + f.name
            elif f is not None and f.type == f.TYPE_MESSAGE:
                inner = _invalid_utf8_field(raw[pos:pos + length], f.message_type, prefix + f.name + ".")
                if inner:
                    return inner
            pos += length
        else:
            return None
    return None


def parse_request(raw: bytes) -> pb.VectorizeRequest:
    """A serialized VectorizeRequest → the message; RequestError (INVALID_ARGUMENT) says what is wrong."""
    from google.protobuf.message import DecodeError

    try:
        return pb.VectorizeRequest.FromString(raw)
    except DecodeError as e:
        field_name = _invalid_utf8_field(raw, pb.VectorizeRequest.DESCRIPTOR)
        if field_name == "prompt":
            raise RequestError("the prompt is not valid UTF-8 text; send it encoded as UTF-8") from None
        if field_name:
            raise RequestError(f"the field {field_name!r} is not valid UTF-8 text; send text as UTF-8") from None
        raise RequestError(f"the request is not a valid lvss.v1.VectorizeRequest message ({e}); "
                           "build the client from proto/lvss/v1/vectorizer.proto") from None


def config_from_request(request: pb.VectorizeRequest, limits: Limits, device: str,
                        base: VectorizeConfig | None = None, quality: str = "balanced") -> VectorizeConfig:
    """The pipeline config a request asks for; RequestError (INVALID_ARGUMENT) says what to fix.

    The request's quality preset (else ``quality``, the server's default) is applied to ``base``
    (default: ``VectorizeConfig()``) with :func:`lvss.config.apply_quality`; options the request sets
    win over the preset, unset ones keep the preset's (or ``base``'s) values, as on the command line.
    A preset's default budget above ``limits.max_paths`` is lowered to it. ``device`` is the server's.
    The saliency mask file is not set here (see ``Servicer._admit``).
    """
    base = base or VectorizeConfig()
    o = request.options
    base = apply_quality(base, request_quality(request, quality), levels_given=False)  # request's levels win below
    if base.paths > limits.max_paths:
        base = base.with_(paths=limits.max_paths)

    values = {}
    for option in REQUEST_OPTIONS:  # declared in lvss.options, in VectorizeOptions' field order
        if option.path == "quality":
            continue  # applied above
        value = getattr(o, option.name) if o.HasField(option.name) else get_value(base, option.path)
        problem = option.refusal(value, getattr(limits, option.limit) if option.limit else None)
        if problem:
            raise RequestError(problem)
        values[option.path] = value
    prompt = request.prompt
    if len(prompt) > limits.max_prompt_chars:
        raise RequestError(f"the prompt has {len(prompt)} characters, over the limit of "
                           f"{limits.max_prompt_chars}; shorten it")
    has_mask = bool(request.saliency_mask)
    saliency = values["saliency.source"]
    if has_mask and not o.HasField("saliency"):
        saliency = "mask"
    if has_mask and saliency != "mask":
        raise RequestError(f"a saliency mask was sent but saliency is {saliency!r}; "
                           "send saliency 'mask' or leave the mask out")
    if saliency == "mask" and not has_mask:
        raise RequestError("saliency 'mask' needs a saliency mask image; send one or pick another source")
    if saliency == "clip" and not prompt.strip():
        raise RequestError("saliency 'clip' needs a prompt naming what matters; send one or pick another source")
    values.update({"saliency.source": saliency, "saliency.prompt": prompt, "device": device})
    cfg = base
    try:
        for path, value in values.items():
            cfg = set_value(cfg, path, value)
    except ConfigError as e:
        raise RequestError(str(e)) from None
    _check_learned_stages(cfg)
    return cfg


def request_quality(request: pb.VectorizeRequest, default: str = "balanced") -> str:
    """The quality preset a request asks for (``default`` when unset); RequestError if unknown."""
    o = request.options
    name = o.quality if o.HasField("quality") else default
    problem = BY_NAME["quality"].refusal(name)
    if problem:
        raise RequestError(problem)
    return name


def _check_learned_stages(cfg: VectorizeConfig) -> None:
    """A learned stage asked for by name needs its model on this server; say so before queueing."""
    from lvss import stages

    try:
        for choose in (stages.simplify_choice, stages.segment_choice, stages.saliency_choice):
            method, spec, _ = choose(cfg)
            if method in _LEARNED and spec is None:
                option, model, flag = _LEARNED[method]
                raise RequestError(f"{option} {method!r} needs {model}, and this server has none configured; "
                                   f"use {option} 'auto' or 'classical' (or start the server with {flag})")
    except ConfigError as e:
        raise RequestError(str(e)) from None


def prompt_warnings(cfg: VectorizeConfig) -> list[str]:
    """Why the request's prompt (``cfg.saliency.prompt``) will not steer the result, and what the
    server needs for it; [] when there is no prompt or it is used (CLIP saliency)."""
    from lvss.pipeline import prompt_note

    note = prompt_note(cfg, mask="the saliency mask sent with it decides what matters instead",
                       no_clip="this server has no CLIP model for prompt saliency; start it with --clip-model "
                               "DIR|HUB_ID or --models paper (downloads the paper's checkpoints once)")
    return [note] if note else []


def _summary(request: pb.VectorizeRequest, cfg: VectorizeConfig, quality: str = "balanced") -> str:
    """Options for the log line; the prompt's length only, never its text."""
    return (f"quality={quality} paths={cfg.paths} mode={cfg.mode} levels={cfg.simplify.levels} seed={cfg.seed} "
            f"work_size={cfg.work_size} simplify={cfg.simplify.method} segment={cfg.segment.method} "
            f"saliency={cfg.saliency.source} iters={cfg.optimize.structure_iters}/{cfg.optimize.refine_iters} "
            f"polish={cfg.optimize.polish_iters} "
            f"fill={cfg.optimize.fill} prompt_chars={len(request.prompt)} mask={'yes' if request.saliency_mask else 'no'}"
            f"{' previews=yes' if request.previews else ''}")


class Servicer(pb_grpc.VectorizerServicer):
    """Vectorizer service for one device.

    run_job: how a job is computed; default :func:`lvss.pipeline.run` (tests inject a scripted double
        to exercise queueing, cancellation and auth without the cost of the real pipeline).
    device: "cpu" or "cuda"; written into every job's config.
    models: names of the models the server holds in memory (reported by GetInfo).
    quality: the preset (:data:`lvss.config.QUALITY_PRESETS`) a request without one gets; it is
        applied to ``base_config`` per request, so ``base_config`` itself carries no preset.
    """

    def __init__(self, run_job: RunJob | None = None, *, device: str = "cpu", limits: Limits | None = None,
                 models: list[str] | None = None, base_config: VectorizeConfig | None = None,
                 auth_required: bool = False, quality: str = "balanced"):
        from lvss.io import ImageError, decode_image_reduced, inspect_image_bytes
        from lvss.svg import scene_to_svg

        self._inspect = inspect_image_bytes
        self._decode = decode_image_reduced
        self._image_error = ImageError
        self._to_svg = scene_to_svg
        self.run_job = run_job if run_job is not None else _pipeline_run()
        self.device = device
        self.limits = limits or Limits()
        self.models = list(models or [])
        base = base_config or VectorizeConfig()
        if base.paths > self.limits.max_paths:  # the default budget must itself be allowed
            base = base.with_(paths=self.limits.max_paths)
        self.base_config = base
        self.quality = check_quality(quality)
        self.auth_required = auth_required
        self._closing = threading.Event()
        self.queue = JobQueue(self.limits.max_queue, self._execute)

    # ---------------------------------------------------------------------------------------- RPCs
    def GetInfo(self, request, context):
        import lvss

        return pb.GetInfoResponse(version=lvss.__version__, device=self.device, models_loaded=self.models,
                                  limits=self.limits.to_proto(), auth_required=self.auth_required,
                                  queue_length=len(self.queue), busy=self.queue.running is not None,
                                  prompt_supported=not prompt_warnings(replace(
                                      self.base_config, saliency=replace(self.base_config.saliency,
                                                                         source="auto", prompt="x"))),
                                  qualities=list(QUALITY_PRESETS), default_quality=self.quality)

    def Vectorize(self, request, context) -> Iterator[pb.VectorizeEvent]:
        """``request``: a VectorizeRequest, or its serialized bytes (the server registers this
        method without a deserializer, so a malformed message gets a clear INVALID_ARGUMENT)."""
        try:
            if isinstance(request, (bytes, bytearray, memoryview)):
                request = parse_request(bytes(request))
            job = self._admit(request)
        except RequestError as e:
            log.info("rejected request from %s: %s (%s)", context.peer(), e, e.code.name)
            context.abort(e.code, str(e))
        del request  # the job holds what it needs; the message may be large
        try:
            self.queue.submit(job, reserved=True)
        except QueueClosed:
            job.cleanup()
            context.abort(grpc.StatusCode.UNAVAILABLE, self._shutdown_message())

        def on_rpc_done() -> None:
            # Fired by gRPC when the call ends for any reason; only matters while the job is unfinished.
            if job.finished:
                return
            job.request_cancel("client")
            if self.queue.withdraw(job):
                self._finish(job, "cancelled in queue")
            job.events.put(_END)

        if not context.add_callback(on_rpc_done):
            on_rpc_done()
        while True:
            item = job.events.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                context.abort(item.code, item.message)
            yield item

    # ------------------------------------------------------------------------------- admission
    def _admit(self, request: pb.VectorizeRequest) -> Job:
        """Checks in order of cost; returns a job holding a reserved queue place (RequestError else)."""
        if self._closing.is_set():
            raise RequestError(self._shutdown_message(), grpc.StatusCode.UNAVAILABLE)
        lim = self.limits
        image, mask = request.image, request.saliency_mask  # each access copies: read them once
        if not image:
            raise RequestError("the request has no image; send the bytes of a PNG, JPEG or WebP file")
        for what, data in (("the image", image), ("the saliency mask", mask)):
            if len(data) > lim.max_image_bytes:
                raise RequestError(f"{what} is {len(data) / MiB:.1f} MiB, over the server's limit of "
                                   f"{lim.max_image_bytes / MiB:.1f} MiB; downscale or recompress it")
        quality = request_quality(request, self.quality)
        cfg = config_from_request(request, lim, self.device, self.base_config, quality)
        try:
            self.queue.reserve()
        except QueueFull:
            raise RequestError(busy_message(lim.max_queue), grpc.StatusCode.RESOURCE_EXHAUSTED) from None
        except QueueClosed:
            raise RequestError(self._shutdown_message(), grpc.StatusCode.UNAVAILABLE) from None
        try:
            info = self._inspect(image, lim.max_pixels)
            if mask:
                try:
                    self._inspect(mask, lim.max_pixels, what="the saliency mask")
                except self._image_error as e:
                    raise RequestError(f"{e}; send a greyscale PNG (white = important) or no mask") from None
        except self._image_error as e:
            self.queue.release()
            raise RequestError(str(e)) from None
        except BaseException:
            self.queue.release()
            raise
        w, h = info.width, info.height
        return Job(data=image, mask_data=mask, size=(w, h), cfg=cfg, nbytes=len(image),
                   summary=f"size={w}x{h} bytes={len(image)} {_summary(request, cfg, quality)}",
                   warnings=prompt_warnings(cfg), previews=bool(request.previews))

    @staticmethod
    def _write_mask(mask: np.ndarray) -> str:
        """The pipeline reads a user mask from a file (SaliencyConfig.mask_path): a greyscale PNG."""
        from PIL import Image

        grey = Image.fromarray(mask).convert("L")
        fd, path = tempfile.mkstemp(prefix="lvss-mask-", suffix=".png")
        with os.fdopen(fd, "wb") as f:
            grey.save(f, format="PNG")
        return path

    # --------------------------------------------------------------------------------- running
    def _execute(self, job: Job) -> None:
        if job.cancel.is_set():
            self._finish(job, "cancelled in queue")
            return
        job.started = time.monotonic()
        last = [0.0]
        shown = {"at": -float("inf"), "size": None}  # the last preview's time; the decoded image's (w, h)

        def progress(ev: ProgressEvent) -> None:
            scene = getattr(ev, "preview", None)
            if scene is not None:
                self._preview(job, scene, last[0], ev.stage, shown)
                return
            # Fractions are clamped to [0, 1] and never go backwards within one job.
            f = min(1.0, max(last[0], float(ev.fraction)))
            last[0] = f
            job.events.put(pb.VectorizeEvent(progress=pb.Progress(stage=ev.stage, fraction=f,
                                                                  message=ev.message)))

        progress.wants_previews = job.previews  # lvss.pipeline.run sends previews only then
        progress(ProgressEvent("start", 0.0, f"job {job.id} started on {self.device}"))
        loading = True
        try:
            image = self._load(job)
            shown["size"] = (image.shape[1], image.shape[0])
            loading = False
            result = self.run_job(image, job.cfg, progress, job.cancel)
            if job.cancel.is_set():
                raise _CancelledHere()
            t = time.monotonic()
            svg = self._to_svg(_full_size(result.scene, image.shape[1], image.shape[0], job.size))
            del image
            t_svg = time.monotonic() - t
            timings = {k: float(v) for k, v in result.timings.items()}
            timings.update(svg=t_svg, queue=job.started - job.submitted,
                           total=time.monotonic() - job.submitted)
            job.events.put(pb.VectorizeEvent(result=pb.Result(
                svg=svg, layers=layers_of_svg(svg), job_id=job.id, warnings=job.warnings,
                metrics={k: float(v) for k, v in result.metrics.items()}, timings=timings)))
            self._finish(job, "ok")
        except Exception as e:  # noqa: BLE001 - one bad job must not stop the server
            if job.cancel.is_set() or _is_cancellation(e):
                stopped = time.monotonic() - (job.cancel_requested_at or time.monotonic())
                if job.cancel_reason == "shutdown":
                    job.events.put(_Failure(grpc.StatusCode.UNAVAILABLE,
                                            "the lvss server shut down before the job finished; send it again"))
                where = " while loading the image" if loading else ""
                self._finish(job, f"cancelled by {job.cancel_reason or 'pipeline'}{where} "
                                  f"(stopped {stopped:.2f}s after the request)")
            elif isinstance(e, (self._image_error, ConfigError)):
                job.events.put(_Failure(grpc.StatusCode.INVALID_ARGUMENT, str(e)))
                self._finish(job, f"invalid: {e}")
            else:
                log.exception("job %s failed", job.id)
                job.events.put(_Failure(grpc.StatusCode.INTERNAL,
                                        f"the job failed on the server ({type(e).__name__}: {e}); "
                                        f"the server log has the details under job {job.id}"))
                self._finish(job, f"error: {type(e).__name__}")

    def _preview(self, job: Job, scene, fraction: float, stage: str, shown: dict) -> None:
        """A ``preview`` event of ``scene`` (in the decoded image's pixels), scaled to the image's full
        size like the result; only when the client asked, at most every PREVIEW_EVERY seconds. A
        preview that cannot be written is skipped (logged): it must never cost the job."""
        now = time.monotonic()
        if not job.previews or shown["size"] is None or now - shown["at"] < PREVIEW_EVERY:
            return
        shown["at"] = now
        try:
            w, h = shown["size"]
            svg = self._to_svg(_full_size(scene, w, h, job.size), precision=PREVIEW_PRECISION, clean=False)
        except Exception:  # noqa: BLE001
            log.warning("job %s: a preview could not be written", job.id, exc_info=True)
            return
        job.events.put(pb.VectorizeEvent(preview=pb.Preview(svg=svg, fraction=fraction, stage=stage)))

    def _load(self, job: Job) -> np.ndarray:
        """Decode the job's image (and mask) to about its working resolution, with cancel points.

        Returns (h, w, 4) uint8 RGBA; the mask goes to a greyscale PNG file for the pipeline. The
        encoded bytes are dropped once decoded. ImageError / LoadCancelled pass through.
        """
        side, lim = job.cfg.work_size, self.limits
        image, size = self._decode(job.data, side, lim.max_pixels, cancel=job.cancel)
        job.size = size  # the decoder's word on orientation is final
        job.data = b""
        release_free_memory()  # the full-size raster is gone: give its memory back before the pipeline
        if job.mask_data:
            try:
                mask, _ = self._decode(job.mask_data, side, lim.max_pixels, what="the saliency mask",
                                       cancel=job.cancel)
            except self._image_error as e:
                raise self._image_error(f"{e}; send a greyscale PNG (white = important) or no mask") from None
            job.mask_data = b""
            job.mask_file = self._write_mask(mask)
            job.cfg = replace(job.cfg, saliency=replace(job.cfg.saliency, mask_path=job.mask_file))
        return image

    def _finish(self, job: Job, outcome: str) -> None:
        if job.finished:
            return
        job.finished = True
        job.cleanup()
        job.data = job.mask_data = b""  # drop the bytes now; the handler may live on
        end = time.monotonic()
        ran = end - job.started if job.started is not None else 0.0
        waited = (job.started or end) - job.submitted
        log.info("job %s %s seconds=%.2f queued=%.2f outcome=%s", job.id, job.summary, ran, waited, outcome)
        job.events.put(_END)

    # -------------------------------------------------------------------------------- shutdown
    def _shutdown_message(self) -> str:
        return "the lvss server is shutting down and takes no new jobs; retry on another server or later"

    def begin_shutdown(self) -> None:
        """Refuse new calls and drop waiting jobs (UNAVAILABLE); the running job goes on."""
        self._closing.set()
        for job in self.queue.close():
            job.request_cancel("shutdown")
            job.events.put(_Failure(grpc.StatusCode.UNAVAILABLE, self._shutdown_message()))
            self._finish(job, "dropped at shutdown")

    def drain(self, grace: float, cancel_wait: float = 5.0, hurry: threading.Event | None = None) -> bool:
        """Let the running job finish within ``grace`` seconds, else cancel it; True if it finished.

        ``hurry``: when it is set during the grace period (a second SIGTERM/SIGINT), the job is
        cancelled at once instead of at the end of the grace period.
        """
        end = time.monotonic() + grace
        while True:
            left = end - time.monotonic()
            if self.queue.wait_idle(max(0.0, min(0.1, left))):
                return True
            if left <= 0:
                why = "grace period over"
                break
            if hurry is not None and hurry.is_set():
                why = "asked again to stop"
                break
        running = self.queue.running
        if running is not None:
            log.info("%s: cancelling job %s", why, running.id)
            running.request_cancel("shutdown")
        self.queue.wait_idle(cancel_wait)
        return False


class _CancelledHere(Exception):
    """run_job returned although the job's cancel event was set; treated as a cancellation."""


def _full_size(scene, w: int, h: int, size: tuple[int, int]):
    """The scene computed on a (w, h) image, scaled to the image's full ``size`` (width, height)."""
    W, H = size
    if (w, h) == (W, H) or (scene.width, scene.height) != (w, h) or W <= 0 or H <= 0:
        return scene
    return scene.scaled(W / w, H / h, width=W, height=H)


_libc = None


def release_free_memory() -> None:
    """Hand freed heap memory back to the operating system (glibc ``malloc_trim``; no-op elsewhere).

    Decoding leaves large freed blocks in the allocator's arenas; without this the server's resident
    size stays at its peak after a large image.
    """
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)

