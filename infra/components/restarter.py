"""The training VM's restarter: starts the VM again after a preemption stopped it, within caps.

GCE never restarts a spot VM it preempted (nor a GPU VM a host event stopped, with automaticRestart off), and a
standard VM stopped by its run limit stays stopped. Why Cloud Scheduler + a Cloud Run job running a shell script:
- a size-1 managed instance group recreates a stopped VM, also the one that powered itself off after training,
  and has no restart cap; it would also need the VM to resize its own group;
- a Scheduler job calling `instances.start` directly cannot read the run's state: it would start a finished run;
- Workflows and Eventarc (on the `compute.instances.preempted` audit event) can only be invoked through a
  project-wide IAM grant, and an event-only trigger misses a start that failed for lack of spot capacity;
- a Cloud Run job is invoked through a grant on the job itself (roles/run.invoker), runs Google's public gcloud
  image (nothing to build), and its script (infra/templates/robojam-restarter.sh) is plain shell that staging runs
  too. Each run reads the bucket's status markers and the caps before it starts anything, and a failed start
  (no spot capacity) is simply tried again on the next schedule.

Least privilege: the job's identity gets a custom role with exactly `compute.instances.get` and
`compute.instances.start` on this one instance, and object access to the run's `status/` prefix only; the
scheduler's identity may only run this one job.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.render import template_text

SCRIPT = "robojam-restarter.sh"
# Google's public gcloud image: nothing of ours to build or push, and gcloud's storage and compute commands.
IMAGE = "gcr.io/google.com/cloudsdktool/google-cloud-cli:slim"
SCHEDULE = "*/10 * * * *"  # every 10 minutes: a preempted run waits at most this long (plus a boot) to resume
EVERY_MINUTES = 10
PERMISSIONS = ["compute.instances.get", "compute.instances.start"]
JOB_LIMITS = {"cpu": "1", "memory": "512Mi"}
JOB_TIMEOUT_S = 300
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class RestartCaps:
    """How often and for how long a run may be started again (robojam:maxRestarts, robojam:maxTotalHours)."""

    max_restarts: int
    max_total_seconds: int


def _account(name: str, account_id: str, title: str, does: str, opts: pulumi.ResourceOptions):
    """A service account of its own for each part, saying what it may do."""
    return gcp.serviceaccount.Account(
        name, account_id=account_id[:30], display_name=title, description=does + "; nothing else.", opts=opts
    )


class TrainingRestarter(pulumi.ComponentResource):
    """Scheduler job -> Cloud Run job that starts the stopped training VM unless its run is over or capped."""

    def __init__(
        self,
        name: str,
        *,
        project: str,
        region: str,
        zone: str,
        stack: str,
        instance: gcp.compute.Instance,
        bucket: gcp.storage.Bucket,
        run_id: str,
        caps: RestartCaps,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("robojam:infra:TrainingRestarter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on or [])
        runner = _account(
            f"{name}-sa",
            f"robojam-restart-{stack}",
            "RoboJam training restarter",
            "Gets and starts the training VM, reads and writes its run's status objects",
            child,
        )
        caller = _account(
            f"{name}-caller", f"robojam-resched-{stack}", "RoboJam restarter schedule", "Runs the restarter job", child
        )
        runner_member = runner.email.apply(lambda email: f"serviceAccount:{email}")
        role = gcp.projects.IAMCustomRole(
            f"{name}-role",
            role_id=f"robojamRestarter_{stack.replace('-', '_')}",
            title="RoboJam training restarter",
            description="Get and start one VM (granted on that instance only).",
            permissions=PERMISSIONS,
            project=project,
            opts=child,
        )
        vm_grant = gcp.compute.InstanceIAMMember(
            f"{name}-vm-access",
            project=project,
            zone=zone,
            instance_name=instance.name,
            role=pulumi.Output.concat("projects/", project, "/roles/", role.role_id),
            member=runner_member,
            opts=child,
        )
        status_grant = gcp.storage.BucketIAMMember(
            f"{name}-status-access",
            bucket=bucket.name,
            role="roles/storage.objectUser",
            member=runner_member,
            condition=gcp.storage.BucketIAMMemberConditionArgs(
                title="run status only",
                description="The restarter reads the run's markers and writes its restart count.",
                expression=bucket.name.apply(
                    lambda b: f'resource.name.startsWith("projects/_/buckets/{b}/objects/status/")'
                ),
            ),
            opts=child,
        )
        env = {
            "INSTANCE": instance.name,
            "ZONE": zone,
            "PROJECT": project,
            "STATUS_URI": bucket.name.apply(lambda b: f"gs://{b}/status/{run_id}"),  # the startup script's STATUS
            "MAX_RESTARTS": str(caps.max_restarts),
            "MAX_TOTAL_SECONDS": str(caps.max_total_seconds),
        }
        self.job = gcp.cloudrunv2.Job(
            f"{name}-job",
            name=f"robojam-restart-{stack}",
            location=region,
            deletion_protection=False,
            labels={"app": "robojam", "stack": stack, "role": "restarter"},
            template=gcp.cloudrunv2.JobTemplateArgs(
                task_count=1,
                template=gcp.cloudrunv2.JobTemplateTemplateArgs(
                    service_account=runner.email,
                    max_retries=0,  # the schedule is the retry
                    timeout=f"{JOB_TIMEOUT_S}s",
                    containers=[
                        gcp.cloudrunv2.JobTemplateTemplateContainerArgs(
                            image=IMAGE,
                            commands=["bash", "-c"],
                            args=[template_text(SCRIPT)],
                            envs=[
                                gcp.cloudrunv2.JobTemplateTemplateContainerEnvArgs(name=key, value=value)
                                for key, value in env.items()
                            ],
                            resources=gcp.cloudrunv2.JobTemplateTemplateContainerResourcesArgs(limits=JOB_LIMITS),
                        )
                    ],
                ),
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[vm_grant, status_grant])),
        )
        invoker = gcp.cloudrunv2.JobIamMember(
            f"{name}-invoker",
            project=project,
            location=region,
            name=self.job.name,
            role="roles/run.invoker",
            member=caller.email.apply(lambda email: f"serviceAccount:{email}"),
            opts=child,
        )
        self.schedule = gcp.cloudscheduler.Job(
            f"{name}-schedule",
            name=f"robojam-restart-{stack}",
            region=region,
            description=f"Runs the training restarter every {EVERY_MINUTES} minutes.",
            schedule=SCHEDULE,
            time_zone="Etc/UTC",
            attempt_deadline="60s",
            http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                http_method="POST",
                uri=self.job.name.apply(
                    lambda job: f"https://run.googleapis.com/v2/projects/{project}/locations/{region}/jobs/{job}:run"
                ),
                oauth_token=gcp.cloudscheduler.JobHttpTargetOauthTokenArgs(
                    service_account_email=caller.email, scope=SCOPE
                ),
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[invoker])),
        )
        self.register_outputs({"job": self.job.name, "schedule": self.schedule.name})
