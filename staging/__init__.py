"""Staging on one machine: build the serving image and run each deployment target's container as deployed.

`python -m staging` (`make staging`) builds the Dockerfile with buildah from a debootstrapped stand-in base,
runs the droplet's container with its systemd unit's flags, Caddy in front with the rendered Caddyfile, the GKE
Deployment under `podman kube play`, and the training VM's startup script against stand-in cloud tools, all read
from what the Pulumi program renders (`infra.mock_plan.plan_stack`). Podman-specific changes live in
`staging.adapt`, nowhere else.
"""
