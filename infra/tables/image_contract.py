"""What the service image promises its deployments: the Dockerfile's user, gunicorn's port, the health paths.

The targets pin the user and probe the paths; the policy pack and staging check against the same values.
"""

from __future__ import annotations

SERVICE_UID = 10001  # the Dockerfile's unprivileged USER: deployments pin it, so the container never runs as root
CONTAINER_PORT = 5000  # the image's gunicorn listens on 0.0.0.0:5000 (ROBOJAM_BIND)
HEALTH_PATH = "/healthz"  # liveness: the process answers
READY_PATH = "/readyz"  # readiness: this worker has loaded and warmed the model
