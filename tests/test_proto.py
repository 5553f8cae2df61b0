"""The wire contract (proto/lvss/v1/vectorizer.proto) and its generated stubs in lvss/_proto/."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("lvss_proto_generate", ROOT / "proto" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_stubs_match_the_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    gen = _generator()
    fresh = gen.generate(tmp_path)
    assert sorted(f.name for f in fresh) == ["vectorizer_pb2.py", "vectorizer_pb2.pyi", "vectorizer_pb2_grpc.py"]
    for f in fresh:
        committed = ROOT / "lvss" / "_proto" / f.name
        assert committed.read_text(encoding="utf-8") == f.read_text(encoding="utf-8"), (
            f"{committed} is stale; run python proto/generate.py")
    assert gen.diff() == []


def test_stubs_import_from_the_lvss_package():
    from lvss._proto import vectorizer_pb2 as pb
    from lvss._proto import vectorizer_pb2_grpc as pb_grpc

    assert pb.DESCRIPTOR.package == "lvss.v1"
    assert pb.DESCRIPTOR.name == "lvss/v1/vectorizer.proto"
    svc = pb.DESCRIPTOR.services_by_name["Vectorizer"]
    methods = {m.name: m for m in svc.methods}
    assert set(methods) == {"Vectorize", "GetInfo"}
    assert methods["Vectorize"].output_type.name == "VectorizeEvent"
    assert hasattr(pb_grpc, "VectorizerStub") and hasattr(pb_grpc, "add_VectorizerServicer_to_server")
    assert pb.VectorizeRequest.__module__ == "lvss._proto.vectorizer_pb2"


def test_messages_round_trip_and_option_presence():
    from lvss._proto import vectorizer_pb2 as pb

    req = pb.VectorizeRequest(image=b"\x89PNG", prompt="a cat", saliency_mask=b"m",
                              options=pb.VectorizeOptions(paths=64, mode="compact", seed=0))
    back = pb.VectorizeRequest.FromString(req.SerializeToString())
    assert back == req
    # optional fields tell "unset" from zero, so the server can apply its defaults
    assert back.options.HasField("seed") and back.options.seed == 0
    assert not back.options.HasField("levels")
    ev = pb.VectorizeEvent(result=pb.Result(svg="<svg/>", layers=[pb.LayerInfo(id="l1", label="sky", path_count=3)],
                                            metrics={"psnr": 30.5}, timings={"total": 1.25}))
    assert ev.WhichOneof("event") == "result"
    ev2 = pb.VectorizeEvent.FromString(ev.SerializeToString())
    assert ev2.result.layers[0].path_count == 3 and ev2.result.metrics["psnr"] == 30.5


def test_import_lvss_does_not_import_grpc_or_protobuf():
    code = ("import sys, lvss, lvss.client, lvss.remote_cli, lvss._proto; "
            "bad = [m for m in ('grpc', 'google.protobuf') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_check_mode_of_the_generator():
    pytest.importorskip("grpc_tools")
    r = subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), "--check"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
