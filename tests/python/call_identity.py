"""Calls FitFlow's identity service the way another team's Python code would.

It generates the Python client from the contracts in proto/ with grpcio-tools
(no checked-in generated code), then over mutual TLS, with the gateway's
certificate, registers a user, logs in, and reads the current user with the
access token. It prints one JSON object:

    {"registered_user_id": ..., "current_user_id": ..., "session_id": ...,
     "duplicate_register_code": "ALREADY_EXISTS"}

Usage: call_identity.py --proto-root proto --address 127.0.0.1:50051
       --server-name identity --ca ca.pem --cert gateway.pem
       --key gateway-key.pem --email ana@example.com
       --password 'correct horse battery staple'
"""

import argparse
import importlib
import json
import pathlib
import sys
import tempfile

import grpc
from grpc_tools import protoc


def generate_client(proto_root: pathlib.Path, out_dir: pathlib.Path) -> None:
    """Generates messages and stubs for every .proto under proto_root."""
    protos = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    # grpc_tools ships the well-known types (google/protobuf/*.proto).
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            *protos,
        ]
    )
    if status != 0:
        sys.exit(f"protoc failed with status {status}")


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("proto-root", "address", "server-name", "ca", "cert", "key", "email", "password"):
        parser.add_argument(f"--{flag}", required=True)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as generated:
        generate_client(pathlib.Path(args.proto_root), pathlib.Path(generated))
        sys.path.insert(0, generated)
        pb = importlib.import_module("fitflow.identity.v1.identity_pb2")
        stubs = importlib.import_module("fitflow.identity.v1.identity_pb2_grpc")

        credentials = grpc.ssl_channel_credentials(
            root_certificates=pathlib.Path(args.ca).read_bytes(),
            private_key=pathlib.Path(args.key).read_bytes(),
            certificate_chain=pathlib.Path(args.cert).read_bytes(),
        )
        # The certificates name the service, not the address we dial.
        options = [("grpc.ssl_target_name_override", args.server_name)]
        with grpc.secure_channel(args.address, credentials, options=options) as channel:
            identity = stubs.IdentityServiceStub(channel)
            registered = identity.Register(
                pb.RegisterRequest(email=args.email, password=args.password, display_name="Py"),
                timeout=30,
            )
            # As the gateway, which always passes on the end user's address.
            login = identity.Login(
                pb.LoginRequest(
                    email=args.email,
                    password=args.password,
                    # The gateway always passes the end user's address.
                    client_address="203.0.113.5",
                    user_agent="python-client-test",
                ),
                timeout=30,
            )
            tokens = login.tokens
            current = identity.GetCurrentUser(
                pb.GetCurrentUserRequest(),
                metadata=[("authorization", f"Bearer {tokens.access_token}")],
                timeout=30,
            )
            try:
                identity.Register(
                    pb.RegisterRequest(email=args.email, password=args.password, display_name="Py"),
                    timeout=30,
                )
                duplicate_code = "OK"
            except grpc.RpcError as error:
                duplicate_code = error.code().name

    print(
        json.dumps(
            {
                "registered_user_id": registered.user.id,
                "current_user_id": current.user.id,
                "session_id": tokens.session_id,
                "duplicate_register_code": duplicate_code,
            }
        )
    )


if __name__ == "__main__":
    main()
