"""One ComponentResource per concern: the service image, the GPU VM, the droplet service, the GKE service."""

import warnings

# The provider SDKs load their modules lazily and warn, as each loads, about their own deprecated aliases
# (gcp.compute.MangedSslCertificate, ...), never about anything this program uses. Load what the components
# use once, here, with that noise silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_command
    import pulumi_digitalocean
    import pulumi_docker_build
    import pulumi_gcp
    import pulumi_kubernetes
    import pulumi_tls

    _USED = (
        pulumi_command.local.Command,
        pulumi_command.remote.Command,
        pulumi_digitalocean.Droplet,
        pulumi_digitalocean.SshKey,
        pulumi_digitalocean.get_account_output,
        pulumi_docker_build.Image,
        pulumi_gcp.artifactregistry.Repository,
        pulumi_gcp.compute.Instance,
        pulumi_gcp.container.Cluster,
        pulumi_gcp.organizations.get_client_config_output,
        pulumi_gcp.projects.IAMMember,
        pulumi_gcp.projects.Service,
        pulumi_gcp.serviceaccount.Account,
        pulumi_gcp.storage.Bucket,
        pulumi_kubernetes.apps.v1.Deployment,
        pulumi_kubernetes.autoscaling.v2.HorizontalPodAutoscaler,
        pulumi_kubernetes.core.v1.ConfigMap,
        pulumi_kubernetes.core.v1.Service,
        pulumi_kubernetes.meta.v1.LabelSelectorArgs,
        pulumi_kubernetes.policy.v1.PodDisruptionBudget,
        pulumi_tls.PrivateKey,
    )
