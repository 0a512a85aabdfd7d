"""The stand-in for the Dockerfile's base image: a debootstrapped Debian bookworm rootfs with Python 3.11.

No registry is reachable here, so the official `python:3.11-slim-bookworm` cannot be pulled. Debian's own
bookworm ships Python 3.11 too; debootstrap builds a minimal rootfs from the machine's Debian mirror, the tarball
is cached (build folder, then ~/.cache/robojam-staging) and imported under the Dockerfile's exact `FROM` name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from dockerfile_parse import DockerfileParser

from staging.errors import StagingError
from staging.podman import Podman

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv")  # venv: the Dockerfile runs `python -m venv`; the official image has it
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
USER_CACHE = Path(os.environ.get("ROBOJAM_STAGING_CACHE", Path.home() / ".cache" / "robojam-staging"))
TARBALL = f"debian-{SUITE}-{'-'.join(PACKAGES)}.tar.gz"
CAVEAT = (
    "caveat: the base image is a stand-in (Debian bookworm + Debian's python3 3.11, debootstrapped here), not the "
    "official python image: python is /usr/bin/python3 (linked from /usr/local/bin/python), the C library and "
    "packages are Debian's, and the host's CA bundle is in it (PIP_CERT) so pip trusts what the host trusts."
)


def from_name(dockerfile: Path) -> str:
    """The one external image every stage of the Dockerfile starts FROM (stage names excluded)."""
    parsed = DockerfileParser(path=str(dockerfile))
    stages = {m.group(1).lower() for m in re.finditer(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", parsed.content)}
    external = {image for image in parsed.parent_images if image.lower() not in stages}
    if len(external) != 1:
        raise StagingError(f"the Dockerfile starts from {sorted(external)}; staging supports exactly one base image.")
    return external.pop()


def debian_mirror() -> str:
    """The machine's configured Debian mirror (deb822 or one-line sources), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for match in re.finditer(r"(?m)^URIs:\s*(\S+)\s*\nSuites:\s*([^\n]*)", text):
            if SUITE in match.group(2).split() and not match.group(1).rstrip("/").endswith("-security"):
                return match.group(1)
        for match in re.finditer(r"(?m)^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s", text):
            if match.group(2) == SUITE:
                return match.group(1)
    return DEFAULT_MIRROR


def rootfs_tarball(build_dir: Path, log) -> Path:
    """The cached stand-in rootfs tarball, made with debootstrap when neither cache has it."""
    cached = build_dir / "base" / TARBALL
    if cached.is_file():
        log(f"base: cached rootfs {cached}")
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    user_cached = USER_CACHE / TARBALL
    if user_cached.is_file():
        shutil.copyfile(user_cached, cached)
        log(f"base: rootfs from {user_cached}")
        return cached
    if os.geteuid() != 0:
        raise StagingError("debootstrap needs root to build the stand-in base image.")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(dir=build_dir, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror]
        log(f"base: {' '.join(argv)}")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        log(done.stdout + done.stderr)
        if done.returncode != 0:
            raise StagingError(f"debootstrap exited {done.returncode} (mirror {mirror}).")
        _fit_to_dockerfile(rootfs)
        partial = cached.with_suffix(".partial")
        with tarfile.open(partial, "w:gz", compresslevel=3) as tar:
            tar.add(rootfs, arcname=".")
        partial.replace(cached)
    try:
        USER_CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, user_cached)
    except OSError as exc:  # the user cache is an optimisation only
        log(f"base: could not keep a copy in {USER_CACHE}: {exc}")
    return cached


def _fit_to_dockerfile(rootfs: Path) -> None:
    """What the official image has and the Dockerfile relies on: `python` on PATH; apt's downloads dropped."""
    for name in ("python", "python3"):
        link = rootfs / "usr" / "local" / "bin" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to("/usr/bin/python3")
    for deb in (rootfs / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()
    if HOST_CA_BUNDLE.is_file():
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / CA_BUNDLE.lstrip("/"))


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def import_base(containers: Podman, tarball: Path, name: str, log) -> None:
    """Import the rootfs under the Dockerfile's FROM name, unless this very tarball is already there."""
    digest = _digest(tarball)
    label = "robojam.staging.base"
    seen = containers.podman("image", "inspect", "--format", f'{{{{index .Labels "{label}"}}}}', name, check=False)
    if seen.returncode == 0 and seen.stdout.strip() == digest:
        log(f"base: {name} already imported ({digest})")
        return
    changes = [
        f"LABEL {label}={digest}",
        "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"ENV PIP_CERT={CA_BUNDLE}",
        'CMD ["python3"]',
    ]
    args = [arg for change in changes for arg in ("--change", change)]
    containers.podman("import", *args, str(tarball), name, timeout=600)
    log(f"base: imported {tarball.name} as {name} ({digest})")
