"""schemathesis against the live /openapi.json of a real gunicorn server: every check, positive data.

The document is the served one, with two changes for the generator only: `perf` gets a pattern of small valid
MicroJam CSVs, so real predictions are made instead of only 400s, and the form encodings are left out (their
fields are JSON values inside strings, which a schema cannot describe; tests/test_service_http.py covers them).
With that, schema-valid data must be accepted (`positive_data_acceptance`) and every reply must match the
document (status codes, headers, content types, bodies) and never be a 5xx.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests
from support import require

from devtools.gunicorn import VENV_BIN, GunicornProcess
from devtools.random_weights import write_random_artifact

pytestmark = pytest.mark.slow
CSV_PATTERN = r"^time,x,y\n(0\.[0-9]{1,3},(0\.[0-9]{1,3}|1\.0),(0\.[0-9]{1,3}|1\.0)\n){1,12}$"


def test_schemathesis_finds_no_failure(tmp_path):
    cli = shutil.which("schemathesis", path=str(VENV_BIN))
    require(cli is not None, "schemathesis is not installed (dev extra)")
    weights = write_random_artifact(tmp_path / "w.npz", units=16, mixtures=2)
    env = {"ROBOJAM_WEIGHTS": str(weights), "ROBOJAM_WORKERS": "1"}
    with GunicornProcess(tmp_path / "schemathesis.log", env=env) as server:
        server.wait_ready()
        document = requests.get(server.url + "/openapi.json", timeout=10).json()
        document["components"]["schemas"]["PredictRequest"]["properties"]["perf"]["pattern"] = CSV_PATTERN
        content = document["paths"]["/api/predict"]["post"]["requestBody"]["content"]
        for form in ("application/x-www-form-urlencoded", "multipart/form-data"):
            del content[form]
        schema = tmp_path / "openapi.json"
        schema.write_text(json.dumps(document))
        done = subprocess.run(
            [
                cli,
                "run",
                str(schema),
                "--url",
                server.url,
                "--checks",
                "all",
                "--mode",
                "positive",
                "--max-examples",
                "60",
                "--request-timeout",
                "20",
                "--no-color",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=600,
        )
        print(done.stdout[-3000:])
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        assert "No issues found" in done.stdout or "passed" in done.stdout.lower(), done.stdout[-3000:]
