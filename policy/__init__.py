"""RoboJam's CrossGuard policy pack: `pulumi preview --policy-pack policy` (see docs/deploy.md).

The policies are plain functions in `policy.rules`; only `policy/__main__.py` builds the PolicyPack (which
starts a gRPC server and blocks, so never in a test process).
"""
