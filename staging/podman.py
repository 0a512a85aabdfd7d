"""Podman and buildah with private storage, run roots and config under the build folder: nothing global changes.

Podman and buildah read their configuration from the files named by CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and
CONTAINERS_REGISTRIES_CONF; we write all three under the build folder, so the host's /etc/containers and
/var/lib/containers are never touched. What each setting is for:
- overlay storage (ROBOJAM_STAGING_STORAGE=vfs where the kernel's overlayfs is not available: slower, same result)
  and chroot build isolation (RUN steps need no user namespaces);
- the cgroupfs cgroup manager: no systemd to ask for a scope;
- host networking: no bridge or slirp needed; every check talks to 127.0.0.1;
- open files and processes limits: the host's own (podman's defaults are above what a sandbox may grant);
- network configs (kube play writes one) under the build folder, not /etc/cni;
- no unqualified-search registries: nothing is ever pulled (there is no registry to pull from).
"""

from __future__ import annotations

import os
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from staging.errors import StagingError

STORAGE_DRIVER = os.environ.get("ROBOJAM_STAGING_STORAGE", "overlay")
MAX_PROCESSES = 32768
TOOLS = ("podman", "buildah", "debootstrap", "runc", "catatonit", "caddy", "curl")


@dataclass(frozen=True)
class Podman:
    """Podman and buildah, pointed at private state under `root`."""

    root: Path

    @classmethod
    def under(cls, build_dir: Path) -> Podman:
        root = build_dir.resolve() / "containers"
        podman = cls(root)
        podman._write_config()
        return podman

    def _write_config(self) -> None:
        # podman's defaults (1048576 open files, 4194304 processes) are above what a sandbox may grant: keep the
        # host's open-files limit and at most 32768 processes (runc could set no more here, whatever the host says).
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        processes = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], MAX_PROCESSES)
        ulimits = f'"nofile={files}:{files}", "nproc={processes}:{processes}"'
        for sub in ("storage", "run", "tmp", "volumes", "networks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "storage.conf").write_text(
            f'[storage]\ndriver = "{STORAGE_DRIVER}"\n'
            f'graphroot = "{self.root / "storage"}"\n'
            f'runroot = "{self.root / "run"}"\n'
        )
        (self.root / "containers.conf").write_text(
            "[containers]\n"
            'netns = "host"\n'
            f"default_ulimits = [{ulimits}]\n"
            'cgroupns = "host"\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.root / "run" / "events.log"}"\n'
            'runtime = "runc"\n'
            f'tmp_dir = "{self.root / "tmp"}"\n'
            f'volume_path = "{self.root / "volumes"}"\n'
            f'static_dir = "{self.root / "storage" / "libpod"}"\n'
            "[network]\n"
            f'network_config_dir = "{self.root / "networks"}"\n'
        )
        (self.root / "registries.conf").write_text("unqualified-search-registries = []\n")

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.root / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(self.root / "registries.conf"),
            "BUILDAH_ISOLATION": "chroot",
            "TMPDIR": str(self.root / "tmp"),
        }

    def run(self, tool: str, *args: str, timeout: float = 120, check: bool = True, **kwargs):
        """Run podman or buildah; a non-zero exit raises StagingError with the tool's last lines."""
        argv = [tool, *args]
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, **kwargs)
        if check and done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise StagingError(f"`{' '.join(argv[:3])} ...` exited {done.returncode}:\n{tail}")
        return done

    def podman(self, *args: str, **kwargs):
        return self.run("podman", *args, **kwargs)

    def buildah(self, *args: str, **kwargs):
        return self.run("buildah", *args, **kwargs)
