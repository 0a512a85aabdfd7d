"""Read the droplet's systemd unit and its `docker` command lines out of the rendered cloud-init user-data."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import yaml

from staging.engine import StagingError

UNIT_PATH = "/etc/systemd/system/robojam.service"
SYSTEMD_DEFAULT_STOP_TIMEOUT = 90.0  # DefaultTimeoutStopSec
DOCKER_DEFAULT_STOP_TIME = 10.0  # `docker stop` waits this long before SIGKILL unless -t/--time says otherwise

# docker's options that take a value; the rest used by the unit are booleans. An unknown option is an error,
# so a new flag in the unit is never silently misread.
VALUE_OPTIONS = {
    "--name", "--publish", "-p", "--env", "-e", "--user", "-u", "--tmpfs", "--cap-drop", "--cap-add",
    "--security-opt", "--memory", "-m", "--cpus", "--restart", "--network", "--add-host", "--volume", "-v",
    "--mount", "--log-driver", "--log-opt", "--pids-limit", "--ulimit", "--stop-timeout", "--stop-signal",
    "--health-cmd", "--health-interval", "--health-timeout", "--health-retries", "--health-start-period",
    "--label", "-l", "--env-file", "--workdir", "-w", "--entrypoint", "--memory-swap", "--shm-size",
    "--hostname", "-h", "--dns", "--init-path", "--sysctl", "--device", "--time", "-t",
}  # fmt: skip
BOOL_OPTIONS = {"--rm", "--read-only", "--init", "--detach", "-d", "--interactive", "-i", "--tty", "--privileged"}


def write_files(user_data: str) -> dict[str, str]:
    """cloud-init's write_files as path -> content."""
    data = yaml.safe_load(user_data)
    if not isinstance(data, dict):
        raise StagingError("the droplet's user-data is not a cloud-config mapping.")
    return {entry["path"]: entry.get("content", "") for entry in data.get("write_files") or []}


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section -> key -> values (keys like ExecStartPre repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    """A systemd time span (`90`, `90s`, `2min`, `1min 30s`, `500ms`) in seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "": 1}
    total = 0.0
    for part in value.split():
        number = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = part[len(number) :]
        if unit not in units or not number:
            raise StagingError(f"cannot read the systemd time span {value!r}.")
        total += float(number) * units[unit]
    return total


@dataclass(frozen=True)
class DockerCommand:
    """One `docker [global options] SUBCOMMAND [options] [args]` line, options kept as (name, value|None)."""

    subcommand: str
    options: list[tuple[str, str | None]]
    args: list[str]

    def values(self, *names: str) -> list[str]:
        return [value for name, value in self.options if name in names and value is not None]


def parse_docker(line: str) -> DockerCommand:
    """Split an Exec line (`-` prefix allowed) into its docker subcommand, options and positional arguments."""
    argv = shlex.split(line.lstrip("-@+!"))
    if not argv or not argv[0].endswith("docker"):
        raise StagingError(f"not a docker command: {line!r}")
    i = 1
    while i < len(argv) and argv[i].startswith("-"):  # global options (--config DIR, --host ...) take a value
        i += 1 if "=" in argv[i] else 2
    if i >= len(argv):
        raise StagingError(f"no docker subcommand in {line!r}")
    subcommand, rest = argv[i], argv[i + 1 :]
    options: list[tuple[str, str | None]] = []
    j = 0
    while j < len(rest) and rest[j].startswith("-"):
        name, eq, value = rest[j].partition("=")
        if name in BOOL_OPTIONS and not eq:
            options.append((name, None))
            j += 1
        elif name in VALUE_OPTIONS:
            if not eq:
                j += 1
                if j >= len(rest):
                    raise StagingError(f"docker option {name} has no value in {line!r}")
                value = rest[j]
            options.append((name, value))
            j += 1
        else:
            raise StagingError(f"unknown docker {subcommand} option {name} (teach staging/droplet_unit.py it).")
    return DockerCommand(subcommand, options, rest[j:])


@dataclass(frozen=True)
class DropletUnit:
    """What staging needs from the unit: the run command, the stop command and the stop timeouts."""

    run: DockerCommand
    stop: DockerCommand | None
    timeout_stop: float  # systemd kills the unit after this long (TimeoutStopSec)

    @property
    def image(self) -> str:
        return self.run.args[0]

    @property
    def stop_time(self) -> float:
        """How long `docker stop` waits for the container before SIGKILL."""
        if self.stop is None:
            return self.timeout_stop
        values = self.stop.values("-t", "--time", "--timeout")
        return float(values[-1]) if values else DOCKER_DEFAULT_STOP_TIME


def droplet_unit(user_data: str) -> DropletUnit:
    """The robojam unit from the droplet's rendered user-data."""
    files = write_files(user_data)
    if UNIT_PATH not in files:
        raise StagingError(f"the droplet's user-data writes no {UNIT_PATH}.")
    service = parse_unit(files[UNIT_PATH]).get("Service", {})
    starts = service.get("ExecStart", [])
    if len(starts) != 1:
        raise StagingError(f"{UNIT_PATH} has {len(starts)} ExecStart lines; expected one `docker run`.")
    run = parse_docker(starts[0])
    if run.subcommand != "run" or not run.args:
        raise StagingError(f"ExecStart is not `docker run IMAGE`: {starts[0]!r}")
    stops = [parse_docker(line) for line in service.get("ExecStop", [])]
    timeout = service.get("TimeoutStopSec") or service.get("TimeoutSec")
    return DropletUnit(
        run=run,
        stop=stops[0] if stops else None,
        timeout_stop=seconds(timeout[-1]) if timeout else SYSTEMD_DEFAULT_STOP_TIMEOUT,
    )
