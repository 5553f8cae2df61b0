"""``lvss serve``: run the vectorization server.

``add_parser(subparsers)`` registers the ``serve`` subcommand on the ``lvss`` CLI (the handler is set
as ``func``, so ``args.func(args)`` runs it); ``main(argv)`` runs it standalone (``python -m lvss_server``
once installed, ``python -m server`` in a source checkout).

This module imports nothing beyond the standard library at load time, so ``lvss serve --help`` works
without the server extra and ``lvss serve`` says how to install it when gRPC is missing.
"""
from __future__ import annotations

import argparse
import logging
import sys

# top-level modules of the server extra (pip install 'lvss[server]')
EXTRA_MODULES = ("grpc", "grpc_health", "grpc_reflection", "google.protobuf", "google")

DESCRIPTION = ("Serve lvss over gRPC (service lvss.v1.Vectorizer, plus grpc.health.v1 and reflection). "
               "Jobs run one at a time per device from a bounded queue.")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; any non-loopback address needs --token-file "
                        "or --insecure)")
    p.add_argument("--port", type=int, default=50051, help="TCP port (default 50051; 0 picks a free one, "
                                                           "printed on stdout)")
    from lvss.config import DEVICES, QUALITY_PRESETS
    from lvss.options import SERVER_LIMITS

    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where jobs run (default auto: cuda if available)")

    p.add_argument("--quality", choices=tuple(QUALITY_PRESETS), default="balanced",
                   help="speed/fidelity preset for requests that name none (default balanced): default path "
                        "budget, working size and optimisation effort, as in lvss vectorize --quality; a "
                        "request's own quality, paths, work_size and iteration counts win")
    p.add_argument("--max-queue", type=int, default=8, metavar="N",
                   help="jobs that may wait behind the running one; more get RESOURCE_EXHAUSTED (default 8)")
    p.add_argument("--token-file", metavar="F", help="file holding the token clients must send as "
                                                    "'authorization: Bearer <token>'")
    p.add_argument("--tls-cert", metavar="F", help="PEM certificate chain; enables TLS (with --tls-key)")
    p.add_argument("--tls-key", metavar="F", help="PEM private key for --tls-cert")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback address without a token (only on trusted networks)")
    p.add_argument("--grace", type=float, default=10.0, metavar="S",
                   help="on SIGTERM, seconds the running job may take to finish before it is cancelled "
                        "(default 10)")
    p.add_argument("--max-image-mb", type=float, default=64.0, metavar="MB",
                   help="largest encoded image (and mask) accepted, MiB (default 64); waiting jobs hold "
                        "only these bytes, one request message at most this plus an eighth")
    p.add_argument("--max-pixels", type=int, default=50_000_000, metavar="N",
                   help="largest image, width x height, checked from its header (default 50 000 000); the "
                        "running job decodes it once at up to 4 bytes per pixel (JPEG at 1/2 to 1/8 scale), "
                        "then works at the request's work size")
    p.add_argument("--max-paths", type=int, default=SERVER_LIMITS["max_paths"], metavar="N",
                   help=f"largest path budget (default {SERVER_LIMITS['max_paths']})")
    p.add_argument("--receive-timeout", type=float, default=120.0, metavar="S",
                   help="seconds a call's request message may take to arrive before the call is cancelled "
                        "(default 120)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for the worker (default: LVSS_THREADS, else the idle cores, at most 4; "
                        "the server runs one worker)")
    g = p.add_argument_group("models (loaded once at start; unset = environment, else classical stages)")
    from lvss.options import add_argument

    for path in ("segment.sam_checkpoint", "simplify.sd_model", "saliency.clip_model"):
        add_argument(g, path)  # --sam-checkpoint, --sd-model, --clip-model as declared in lvss.config
    from lvss.models.weights import MODEL_SETS

    g.add_argument("--models", choices=tuple(MODEL_SETS), default=None,
                   help="'paper': SAM ViT-H, Stable Diffusion 1.5 and CLIP ViT-B/16, downloaded once into the "
                        "usual caches (the three flags above override one of them); see lvss info")
    from lvss.cli.info import add_cost_arguments

    add_cost_arguments(g)  # --sam-points-per-side, --sds-iterations, --sds-guidance-size: every job's default
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``serve`` on an argparse subparsers object; returns the new parser."""
    p = subparsers.add_parser("serve", help="run the gRPC vectorization server", description=DESCRIPTION)
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def options_from_args(args: argparse.Namespace):
    """ServerOptions from parsed arguments (reads the token file). Raises app.StartupError."""
    from .app import ServerOptions, StartupError, read_token_file
    from .service import MiB, Limits

    if args.max_image_mb <= 0:
        raise StartupError(f"--max-image-mb must be > 0, got {args.max_image_mb}")
    if args.max_pixels <= 0 or args.max_paths <= 0:
        raise StartupError("--max-pixels and --max-paths must be > 0")
    if args.max_queue < 0:
        raise StartupError(f"--max-queue must be >= 0, got {args.max_queue}")
    if not args.receive_timeout > 0:
        raise StartupError(f"--receive-timeout must be > 0 seconds, got {args.receive_timeout}")
    if args.threads is not None and args.threads <= 0:
        raise StartupError(f"--threads must be a positive number of threads, got {args.threads}")
    limits = Limits(max_image_bytes=int(args.max_image_mb * MiB), max_pixels=args.max_pixels,
                    max_paths=args.max_paths, max_queue=args.max_queue, receive_seconds=args.receive_timeout)
    token = read_token_file(args.token_file) if args.token_file else None
    from lvss.cli.info import COST_OPTIONS, apply_model_arguments
    from lvss.options import dest_of

    models = argparse.Namespace(sam_checkpoint=args.sam_checkpoint, sd_model=args.sd_model,
                                clip_model=args.clip_model, models=getattr(args, "models", None),
                                **{dest_of(p): getattr(args, dest_of(p), None) for p in COST_OPTIONS})
    from lvss.config import ConfigError

    try:
        base_config = apply_model_arguments(models)  # --models: downloads once, verifies
    except ConfigError as e:
        raise StartupError(str(e)) from None
    return ServerOptions(host=args.host, port=args.port, device=args.device, token=token,
                         tls_cert=args.tls_cert, tls_key=args.tls_key, insecure=args.insecure,
                         grace=args.grace, limits=limits, base_config=base_config,
                         threads=args.threads, quality=getattr(args, "quality", "balanced"))


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def missing_extra(e: ImportError) -> str | None:
    """The advice for an ImportError caused by a missing server extra, else None."""
    name = getattr(e, "name", None) or ""
    if isinstance(e, ModuleNotFoundError) and name.split(".")[0] in {m.split(".")[0] for m in EXTRA_MODULES}:
        return (f"the server needs the 'server' extra (missing module {name}); install it with "
                "pip install 'lvss[server]'")
    return None


def run(args: argparse.Namespace, run_job=None) -> int:
    """Run the server until SIGTERM/SIGINT; exit status 0, or 2 with a one-line error."""
    from lvss import threads

    threads.prepare_environment()  # the thread policy's environment, before .app loads numpy and torch
    setup_logging(args.log_level)
    try:
        from .app import StartupError, check_options, serve
    except ImportError as e:
        advice = missing_extra(e)
        if advice is None:
            raise
        print(f"lvss serve: error: {advice}", file=sys.stderr)
        return 2

    try:
        opts = options_from_args(args)
        check_options(opts)
        return serve(opts, run_job)
    except StartupError as e:
        print(f"lvss serve: error: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lvss serve", description=DESCRIPTION)
    _add_arguments(p)
    return run(p.parse_args(argv))
