"""Generate the Python stubs for the lvss wire contract into ``lvss/_proto/``.

    python proto/generate.py            # (re)write lvss/_proto/vectorizer_pb2{.py,.pyi,_grpc.py}
    python proto/generate.py --check    # exit 1 if the committed stubs differ from a fresh generation

protoc names Python modules after the .proto path (``lvss/v1/vectorizer.proto`` → ``lvss.v1``), which
would collide with the ``lvss`` package itself, so the generated files are placed flat in
``lvss/_proto/`` and their two references to the module path are rewritten to that location. The
rewrite is part of generation, so ``--check`` (and tests/test_proto.py) compare like with like.

Two checks: the contract itself (the file descriptor protoc builds from the .proto must equal the one
embedded in the committed stubs, whatever the grpcio-tools version), and the exact text of the
stubs, which only a grpcio-tools release equal to the one that generated them can reproduce.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_FILES = ["lvss/v1/vectorizer.proto"]
TARGET = ROOT / "lvss" / "_proto"
PACKAGE = "lvss._proto"


def _fix(text: str, stem: str, proto_module: str) -> str:
    """Point the generated code at ``lvss._proto.<stem>`` instead of protoc's ``lvss.v1.<stem>``."""
    text = text.replace(f"'{proto_module}.{stem}_pb2'", f"'{PACKAGE}.{stem}_pb2'")
    alias = proto_module.replace(".", "_dot_") + f"_dot_{stem}__pb2"
    text = text.replace(f"from {proto_module} import {stem}_pb2 as {alias}",
                        f"from . import {stem}_pb2 as {alias}")
    text = text.replace(f"{proto_module.replace('.', '/')}/{stem}_pb2_grpc.py",
                        f"{PACKAGE.replace('.', '/')}/{stem}_pb2_grpc.py")
    return text


def generate(out_dir: str | Path) -> list[Path]:
    """Run protoc (grpcio-tools) on the contract; write the fixed-up stubs to ``out_dir``.

    Returns the written files. Raises RuntimeError with protoc's message when generation fails.
    """
    try:
        from grpc_tools import protoc
    except ImportError:  # pragma: no cover - dev dependency
        raise RuntimeError("grpcio-tools is not installed; pip install grpcio-tools") from None
    import importlib.resources

    include = str(importlib.resources.files("grpc_tools") / "_proto")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as raw:
        for rel in PROTO_FILES:
            args = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={raw}",
                    f"--pyi_out={raw}", f"--grpc_python_out={raw}", str(PROTO_ROOT / rel)]
            if protoc.main(args) != 0:
                raise RuntimeError(f"protoc failed on {rel}")
            rel_dir = Path(rel).parent
            stem = Path(rel).stem
            proto_module = ".".join(rel_dir.parts)
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
                src = Path(raw) / rel_dir / f"{stem}{suffix}"
                dst = out_dir / f"{stem}{suffix}"
                dst.write_text(_fix(src.read_text(encoding="utf-8"), stem, proto_module), encoding="utf-8")
                written.append(dst)
    return written


def _strip_json_names(fd):
    # protoc's descriptor sets carry json_name on every field; the embedded descriptor does not
    stack = list(fd.message_type)
    while stack:
        m = stack.pop()
        for f in m.field:
            f.ClearField("json_name")
        stack.extend(m.nested_type)
    return fd


def fresh_descriptors() -> dict:
    """{proto file name: FileDescriptorProto} as protoc builds them from proto/ now."""
    import importlib.resources

    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    include = str(importlib.resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--descriptor_set_out={out}",
                *[str(PROTO_ROOT / rel) for rel in PROTO_FILES]]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed")
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return {fd.name: _strip_json_names(fd) for fd in fds.file}


def committed_descriptors() -> dict:
    """{proto file name: FileDescriptorProto} embedded in the committed stubs."""
    import importlib

    from google.protobuf import descriptor_pb2

    sys.path.insert(0, str(ROOT))
    out = {}
    for rel in PROTO_FILES:
        mod = importlib.import_module(f"{PACKAGE}.{Path(rel).stem}_pb2")
        out[rel] = _strip_json_names(descriptor_pb2.FileDescriptorProto.FromString(mod.DESCRIPTOR.serialized_pb))
    return out


def generated_with() -> str | None:
    """The grpcio-tools version that generated the committed stubs (from their version guard)."""
    import re

    for rel in PROTO_FILES:
        text = (TARGET / f"{Path(rel).stem}_pb2_grpc.py").read_text(encoding="utf-8")
        m = re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", text)
        if m:
            return m.group(1)
    return None


def tools_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("grpcio-tools")


def diff(committed: Path = TARGET) -> list[str]:
    """Names of stub files whose committed content differs from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(tmp)
        return [f.name for f in fresh
                if not (committed / f.name).exists()
                or (committed / f.name).read_text(encoding="utf-8") != f.read_text(encoding="utf-8")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when the stubs are stale")
    args = ap.parse_args(argv)
    if args.check:
        if fresh_descriptors() != committed_descriptors():
            print("the committed stubs do not match proto/; run python proto/generate.py", file=sys.stderr)
            return 1
        if tools_version() != generated_with():
            print(f"contract matches; text not compared (stubs from grpcio-tools {generated_with()}, "
                  f"installed {tools_version()})")
            return 0
        stale = diff()
        if stale:
            print(f"stale generated stubs: {', '.join(stale)}; run python proto/generate.py", file=sys.stderr)
            return 1
        print("generated stubs match proto/")
        return 0
    for f in generate(TARGET):
        print(f.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
