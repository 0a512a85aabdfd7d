"""`--refresh`: offline it keeps the bundled catalogue; online it parses the providers' price APIs."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading

import pytest

from infra.costs import refresh as refresh_mod
from infra.costs.catalogue import CATALOGUE_PATH, load_catalogue
from infra.costs.cli import main

CAT = load_catalogue()


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_refresh_offline_says_so_in_one_line_and_keeps_the_file(capsys, monkeypatch):
    for var in (refresh_mod.GCP_KEY_ENV, refresh_mod.DO_TOKEN_ENV):
        monkeypatch.delenv(var, raising=False)
    before = CATALOGUE_PATH.read_bytes()
    code, out, err = run_cli(capsys, "--refresh")
    assert code == 0
    assert len(out.strip().splitlines()) == 1 and "keeping the bundled catalogue" in out
    assert err == ""
    assert CATALOGUE_PATH.read_bytes() == before


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refresh_without_network_keeps_the_file(capsys, monkeypatch, tmp_path):
    copy = tmp_path / "catalogue.json"
    copy.write_bytes(CATALOGUE_PATH.read_bytes())
    monkeypatch.delenv(refresh_mod.GCP_KEY_ENV, raising=False)
    monkeypatch.setenv(refresh_mod.DO_TOKEN_ENV, "not-a-real-token")
    monkeypatch.setattr(refresh_mod, "DO_SIZES_URL", f"http://127.0.0.1:{closed_port()}/v2/sizes")
    code, out, _ = run_cli(capsys, "--refresh", "--catalogue", str(copy))
    assert code == 0 and len(out.strip().splitlines()) == 1 and "cannot reach" in out
    assert copy.read_bytes() == CATALOGUE_PATH.read_bytes()


def test_refresh_reads_droplet_prices_from_the_sizes_api(capsys, monkeypatch, tmp_path):
    seen = {}

    class Sizes(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen["auth"] = self.headers.get("Authorization")
            body = json.dumps(
                {
                    "sizes": [{"slug": "s-1vcpu-1gb", "price_monthly": 7.0, "price_hourly": 0.01042}],
                    "links": {},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Sizes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        copy = tmp_path / "catalogue.json"
        copy.write_bytes(CATALOGUE_PATH.read_bytes())
        monkeypatch.delenv(refresh_mod.GCP_KEY_ENV, raising=False)
        monkeypatch.setenv(refresh_mod.DO_TOKEN_ENV, "test-token")
        monkeypatch.setattr(refresh_mod, "DO_SIZES_URL", f"http://127.0.0.1:{server.server_port}/v2/sizes")
        code, out, _ = run_cli(capsys, "--refresh", "--catalogue", str(copy))
    finally:
        server.shutdown()
    assert code == 0 and "refreshed 0 GCP and 1 DigitalOcean prices" in out
    assert seen["auth"] == "Bearer test-token"
    updated = load_catalogue(copy)
    item = updated.by_id("do.droplet.s-1vcpu-1gb")
    assert (item.price, item.price_hourly) == (7.0, 0.01042)
    assert item.date == updated.updated == dt.date.today().isoformat()
    assert item.price_date == dt.date.today()  # the old source file's date no longer applies
    assert item.source == "https://api.digitalocean.com/v2/sizes"
    assert updated.by_id("do.droplet.s-1vcpu-2gb").price == CAT.by_id("do.droplet.s-1vcpu-2gb").price


def sku(description: str, price: float, usage: str = "OnDemand", region: str = "us-central1") -> dict:
    units, nanos = int(price), round((price - int(price)) * 1e9)
    rate = {"unitPrice": {"units": str(units), "nanos": nanos}}
    return {
        "description": description,
        "serviceRegions": [region],
        "category": {"usageType": usage},
        "pricingInfo": [{"pricingExpression": {"tieredRates": [rate]}}],
    }


def test_gcp_machine_prices_are_built_from_core_ram_and_included_gpu_skus():
    skus = [
        sku("N1 Predefined Instance Core running in Americas", 0.031611),
        sku("N1 Predefined Instance Ram running in Americas", 0.004237),
        sku("Spot Preemptible N1 Predefined Instance Core running in Americas", 0.01, "Preemptible"),
        sku("Spot Preemptible N1 Predefined Instance Ram running in Americas", 0.002, "Preemptible"),
        sku("N1 Predefined Instance Core running in EMEA", 9.0, region="europe-west1"),
        sku("G2 Instance Core running in Americas", 0.024988),
        sku("G2 Instance Ram running in Americas", 0.002928),
        sku("Nvidia L4 GPU running in Americas", 0.559972),
        sku("Nvidia Tesla T4 GPU running in Americas", 0.35),
        sku("E2 Instance Core running in Americas", 0.021811),
        sku("E2 Instance Ram running in Americas", 0.002923),
        sku("Balanced PD Capacity in Iowa", 0.1),
    ]
    raw = json.loads(CATALOGUE_PATH.read_text())["items"]
    prices = refresh_mod.gcp_prices(skus, raw)
    assert prices["gce.machine.n1-standard-4"] == pytest.approx(4 * 0.031611 + 15 * 0.004237, abs=1e-6)
    assert prices["gce.machine.n1-standard-4.spot"] == pytest.approx(4 * 0.01 + 15 * 0.002, abs=1e-6)
    g2 = 4 * 0.024988 + 16 * 0.002928 + 0.559972
    assert prices["gce.machine.g2-standard-4"] == pytest.approx(g2, abs=1e-6)
    assert prices["gce.machine.e2-medium"] == pytest.approx(1 * 0.021811 + 4 * 0.002923, abs=1e-6)
    assert prices["gce.gpu.nvidia-tesla-t4"] == pytest.approx(0.35)
    assert prices["gce.disk.pd-balanced"] == pytest.approx(0.1)
    assert "gce.machine.g2-standard-4.spot" not in prices  # no spot G2/L4 SKUs given: keep the bundled price


def test_refresh_ignores_committed_use_skus():
    # Listed first, as the API may: a 1-year commitment matches the T4 pattern at a price nobody pays on demand.
    skus = [
        sku("Commitment v1: Nvidia Tesla T4 GPU running in Americas for 1 Year", 0.22, "Commit1Yr"),
        sku("Commitment v1: N1 Predefined Instance Core running in Americas for 3 Years", 0.014, "Commit3Yr"),
        sku("Nvidia Tesla T4 GPU running in Americas", 0.35),
        sku("N1 Predefined Instance Core running in Americas", 0.031611),
        sku("N1 Predefined Instance Ram running in Americas", 0.004237),
    ]
    raw = json.loads(CATALOGUE_PATH.read_text())["items"]
    prices = refresh_mod.gcp_prices(skus, raw)
    assert prices["gce.gpu.nvidia-tesla-t4"] == pytest.approx(0.35)
    assert prices["gce.machine.n1-standard-4"] == pytest.approx(4 * 0.031611 + 15 * 0.004237, abs=1e-6)
    only_committed = refresh_mod.gcp_prices(skus[:2], raw)
    assert "gce.gpu.nvidia-tesla-t4" not in only_committed  # nothing on-demand found: keep the bundled price
