"""Generates the Python modules of every .proto under protos/ (grpcio-tools), beside the .proto
and into the client SDK (clients/python/imgclf_client/_proto, whose __init__ says why); and the
descriptor set of the wire-compatible protos (TensorFlow Serving's and the Open Inference
Protocol's, ``descriptors.binpb``) that the server loads into a private pool, so that no worker
runs protoc.

    python -m protos.generate            # write
    python -m protos.generate --check    # exit 1 if the committed modules are stale

The generated gRPC modules import their message modules relatively, so ``protos`` works as a
package from the repository root and from a built bento alike.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CLIENT = ROOT.parent / "clients" / "python" / "imgclf_client" / "_proto"
PROTOS = ("imgclf/v1/classifier.proto",)
# Compiled into one descriptor set, not into modules: their packages (tensorflow.serving,
# inference) are also those of tensorflow-serving-api's and tritonclient's own modules.
WIRE_PROTOS = ("tfserving/tensorflow_serving.proto", "inference/grpc_service.proto")
DESCRIPTORS = Path("descriptors.binpb")


def generate(out: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    for proto in PROTOS:
        status = protoc.main(["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", proto])
        if status != 0:
            raise SystemExit(f"protoc failed on {proto}")
    status = protoc.main(["protoc", f"-I{ROOT}", f"-I{include}", "--include_imports", f"--descriptor_set_out={out / DESCRIPTORS}", *WIRE_PROTOS])
    if status != 0:
        raise SystemExit(f"protoc failed on {', '.join(WIRE_PROTOS)}")
    for path in out.rglob("*_pb2_grpc.py"):
        text = path.read_text()
        text = re.sub(r"^from imgclf\.v1 import (\w+) as", r"from . import \1 as", text, flags=re.M)
        path.write_text(text)


def generated_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if (p.name.rpartition(".")[0].endswith(("_pb2", "_pb2_grpc")) and p.suffix in (".py", ".pyi")) or p.suffix == ".binpb"
    }


def main(argv: list[str]) -> int:
    if "--check" in argv:
        with tempfile.TemporaryDirectory() as scratch:
            generate(Path(scratch))
            fresh = generated_files(Path(scratch))
        expected = {ROOT: fresh, CLIENT: {name: data for name, data in fresh.items() if not name.endswith(".binpb")}}
        stale = sorted(
            f"{where.name}/{name}" for where, files in expected.items() for name, data in files.items() if data != generated_files(where).get(name)
        )
        if stale:
            print(f"stale generated modules: {', '.join(stale)}; run python -m protos.generate", file=sys.stderr)
            return 1
        return 0
    for where in (ROOT, CLIENT):
        generate(where)
    (CLIENT / DESCRIPTORS).unlink()  # The SDK speaks only imgclf.v1.
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
