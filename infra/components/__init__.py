"""One ComponentResource per concern: the service image, the GPU VM, the droplet service, the GKE service."""
