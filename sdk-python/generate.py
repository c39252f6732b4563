"""Regenerates gen/ from the contract in ../proto with grpcio-tools.

    python generate.py [OUT_DIR]    (default: gen/ beside this file)

Only seckill/v1 is generated, into the package seckill.v1 (the proto package's
own path, so protoc's absolute imports work as they are). The google/api and
google/rpc protos it imports are read from ../proto but not generated: their
Python modules come from googleapis-common-protos, since a second build of the
same .proto files in one process fails ("duplicate file name").
"""

import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
PROTO = HERE.parent / "proto"


def generate(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sources = sorted(p.relative_to(PROTO).as_posix() for p in (PROTO / "seckill" / "v1").glob("*.proto"))
    well_known = resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    args = ["protoc", f"-I{PROTO}", f"-I{well_known}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *sources]
    if protoc.main(args) != 0:
        sys.exit(f"protoc failed on {', '.join(sources)}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE / "gen")
