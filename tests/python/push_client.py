"""An independent gRPC client of the hub, in Python with grpcio.

Stubs are generated at run time from proto/ with grpc_tools (no protoc binary). Pushes
a JSON-lines file of envelopes with a department's client certificate, one unary Push
per batch, and prints one JSON object per envelope's result on stdout, so a test can
compare it with what the Rust client got.

usage: push_client.py --endpoint 127.0.0.1:7443 --identity DIR --ca CA.pem --file F.jsonl
"""

import argparse
import importlib
import json
import pathlib
import sys
import tempfile

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"


def load_stubs(out_dir):
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "tongban" / "v1").glob("*.proto"))
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out_dir}",
                        f"--grpc_python_out={out_dir}", *protos])
    if code != 0:
        sys.exit(f"generating stubs from {PROTO_DIR} failed")
    sys.path.insert(0, out_dir)
    return (importlib.import_module("tongban.v1.records_pb2"),
            importlib.import_module("tongban.v1.exchange_pb2"),
            importlib.import_module("tongban.v1.exchange_pb2_grpc"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--identity", required=True, type=pathlib.Path)
    parser.add_argument("--ca", required=True, type=pathlib.Path)
    parser.add_argument("--file", required=True, type=pathlib.Path)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out_dir:
        records_pb2, exchange_pb2, exchange_grpc = load_stubs(out_dir)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=args.ca.read_bytes(),
            private_key=(args.identity / "key.pem").read_bytes(),
            certificate_chain=(args.identity / "cert.pem").read_bytes(),
        )
        # The dev server certificate names localhost and 127.0.0.1.
        options = [("grpc.ssl_target_name_override", "localhost")]
        with grpc.secure_channel(args.endpoint, credentials, options=options) as channel:
            stub = exchange_grpc.ExchangeStub(channel)
            envelopes = []
            for line in args.file.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                e = json.loads(line)
                envelopes.append(records_pb2.Envelope(
                    record_type=e["record_type"], source_id=e["source_id"],
                    source_version=e["source_version"], deleted=e.get("deleted", False),
                    payload=json.dumps(e["payload"], ensure_ascii=False).encode("utf-8")))
            for start in range(0, len(envelopes), args.batch_size):
                request = exchange_pb2.PushRequest(batch_id=str(start), envelopes=envelopes[start:start + args.batch_size])
                response = stub.Push(request, timeout=30)
                for result in response.results:
                    print(json.dumps({
                        "record_type": result.record_type,
                        "source_id": result.source_id,
                        "outcome": records_pb2.Outcome.Name(result.outcome),
                        "current_version": result.current_version if result.HasField("current_version") else None,
                        "errors": [{"pointer": err.pointer, "code": err.code} for err in result.errors],
                    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
