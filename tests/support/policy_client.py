"""Run inside policy/venv (it needs pulumi-policy's gRPC stack): send recorded resources to a running policy
pack's AnalyzeStack, as `pulumi preview --policy-pack` would, and print the diagnostics as JSON.

    policy/venv/bin/python tests/support/policy_client.py PORT RESOURCES.json
RESOURCES.json: [{"type", "name", "urn", "properties", "dependencies"}]; secrets already in Pulumi's envelope.
"""

import json
import sys

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

port, path = sys.argv[1], sys.argv[2]
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
grpc.channel_ready_future(channel).result(timeout=30)
stub = analyzer_pb2_grpc.AnalyzerStub(channel)
request = analyzer_pb2.AnalyzeStackRequest()
for item in json.load(open(path)):
    properties = struct_pb2.Struct()
    json_format.ParseDict(item["properties"], properties)
    request.resources.append(
        analyzer_pb2.AnalyzerResource(
            type=item["type"],
            name=item["name"],
            urn=item["urn"],
            properties=properties,
            dependencies=item["dependencies"],
        )
    )
response = stub.AnalyzeStack(request, timeout=60)
print(json.dumps([{"policy": d.policyName, "urn": d.urn, "message": d.message} for d in response.diagnostics]))
