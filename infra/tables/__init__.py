"""Pure tables shared by the program, the policy pack, the costs engine and staging.

Plain data and pure functions only: no provider SDK, no Pulumi, so `policy/` (its own small venv) can import
them. `gpus`: the GPU offers; `gcp_apis`: which API serves which resource type; `resource_types`: every Pulumi
type token the repo names; `image_contract`: what the service image promises (user, port, health paths).
"""
