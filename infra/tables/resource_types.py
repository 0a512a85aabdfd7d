"""Every Pulumi resource (and invoke) type token the repo names, each typed once.

The program's components create these; the mocks (infra.mock_plan), the policy pack, the costs engine and
staging recognise resources by them.
"""

from __future__ import annotations

# Google Cloud
GCP_INSTANCE = "gcp:compute/instance:Instance"
GCP_ADDRESS = "gcp:compute/address:Address"
GCP_FIREWALL = "gcp:compute/firewall:Firewall"
GCP_SERVICE_ACCOUNT = "gcp:serviceaccount/account:Account"
GCP_BUCKET = "gcp:storage/bucket:Bucket"
GCP_BUCKET_OBJECT = "gcp:storage/bucketObject:BucketObject"
GCP_REPOSITORY = "gcp:artifactregistry/repository:Repository"
GCP_CLUSTER = "gcp:container/cluster:Cluster"
GCP_NODE_POOL = "gcp:container/nodePool:NodePool"
GCP_IAM_MEMBER = "gcp:projects/iAMMember:IAMMember"
GCP_REPOSITORY_IAM_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
GCP_CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"  # a role definition, granted elsewhere
GCP_INSTANCE_IAM_MEMBER = "gcp:compute/instanceIAMMember:InstanceIAMMember"
GCP_BUCKET_IAM_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
GCP_RUN_JOB = "gcp:cloudrunv2/job:Job"
GCP_RUN_JOB_IAM_MEMBER = "gcp:cloudrunv2/jobIamMember:JobIamMember"
GCP_SCHEDULER_JOB = "gcp:cloudscheduler/job:Job"
GCP_PROJECT_SERVICE = "gcp:projects/service:Service"  # enables an API; itself served by serviceusage, always on
GCP_GET_CLIENT_CONFIG = "gcp:organizations/getClientConfig:getClientConfig"  # an invoke

# DigitalOcean
DO_DROPLET = "digitalocean:index/droplet:Droplet"
DO_FIREWALL = "digitalocean:index/firewall:Firewall"
DO_SSH_KEY = "digitalocean:index/sshKey:SshKey"
DO_RESERVED_IP = "digitalocean:index/reservedIp:ReservedIp"
DO_RESERVED_IP_ASSIGNMENT = "digitalocean:index/reservedIpAssignment:ReservedIpAssignment"
DO_REGISTRY = "digitalocean:index/containerRegistry:ContainerRegistry"
DO_REGISTRY_CREDENTIALS = "digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials"
DO_GET_ACCOUNT = "digitalocean:index/getAccount:getAccount"  # an invoke
DO_GET_SSH_KEYS = "digitalocean:index/getSshKeys:getSshKeys"  # an invoke

# Kubernetes
K8S_DEPLOYMENT = "kubernetes:apps/v1:Deployment"
K8S_STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
K8S_DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
K8S_REPLICA_SET = "kubernetes:apps/v1:ReplicaSet"
K8S_JOB = "kubernetes:batch/v1:Job"
K8S_POD = "kubernetes:core/v1:Pod"
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
K8S_HPA_V1 = "kubernetes:autoscaling/v1:HorizontalPodAutoscaler"

# Others
DOCKER_IMAGE = "docker-build:index:Image"
TLS_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
REMOTE_COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"
