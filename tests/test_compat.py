"""The compat seams: each library's private API behind one module, with a canary that fails in one clear line."""

from __future__ import annotations

import subprocess

import pytest
from support import require

from infra.compat import pulumi_sdk
from robojam_format.layout import REPO_ROOT

POLICY_PYTHON = REPO_ROOT / "policy" / "venv" / "bin" / "python"


def test_the_pulumi_sdk_canary_passes_on_the_installed_sdk():
    try:
        pulumi_sdk.canary()
    except pulumi_sdk.CompatError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_a_broken_pulumi_seam_is_one_line_naming_the_module(monkeypatch):
    from pulumi.runtime import mocks

    monkeypatch.delattr(mocks, "_ensure_event_loop")
    with pytest.raises(pulumi_sdk.CompatError) as info:
        pulumi_sdk.canary()
    message = str(info.value)
    assert message.startswith("infra/compat/pulumi_sdk.py (written for pulumi ") and "\n" not in message


def test_an_sdk_outside_the_range_fails_the_canary(monkeypatch):
    monkeypatch.setattr(pulumi_sdk, "_version", lambda: (4, 0))
    with pytest.raises(pulumi_sdk.CompatError, match=r"^infra/compat/pulumi_sdk.py .* is outside its range\.$"):
        pulumi_sdk.canary()


def _policy(script: str) -> subprocess.CompletedProcess:
    require(POLICY_PYTHON.exists(), "policy/venv is missing: make policy-venv")
    return subprocess.run(
        [str(POLICY_PYTHON), "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_policy_pack_canary_passes_on_the_installed_pulumi_policy():
    done = _policy(
        "from policy import compat\ntry:\n    compat.canary()\nexcept compat.CompatError as e:\n    print(e)"
    )
    assert done.returncode == 0 and done.stdout == "", (done.stdout or done.stderr).strip()


def test_a_broken_policy_seam_is_one_line_naming_the_module():
    script = (
        "import pulumi_policy.policy as sdk\nfrom policy import compat\n"
        "sdk.deserialize_properties = lambda props, proxy_secrets=False: props\n"
        "try:\n    compat.canary()\nexcept compat.CompatError as e:\n    print(e)"
    )
    done = _policy(script)
    line = done.stdout.strip()
    assert line.startswith("policy/compat.py (written for pulumi-policy ") and "\n" not in line, done.stderr


def test_the_recorder_sees_each_resources_secret_paths_in_order():
    script = (
        "import pulumi_policy.policy as sdk\nfrom policy import compat\nfrom pulumi_policy.deserialize import "
        "SPECIAL_SECRET_SIG as S, SPECIAL_SIG_KEY as K\nseen = []\ncompat.record_secret_paths(seen)\n"
        "plain = sdk.deserialize_properties({'a': {'b': [1, {K: S, 'value': 'x'}]}, 'c': 2})\n"
        "sdk.deserialize_properties({'d': 1})\nprint(seen, plain)"
    )
    done = _policy(script)
    assert done.stdout.strip() == "[('a.b[1]',), ()] {'a': {'b': [1, 'x']}, 'c': 2}", done.stderr
