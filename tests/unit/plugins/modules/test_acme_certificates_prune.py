"""acme_certificates with prune=true: no email needed, --check --diff shows the removal and changes nothing."""
import json
import os

from ansible_collections.selfhost.pi.plugins.module_utils import tls_state
from ansible_collections.selfhost.pi.plugins.modules import acme_certificates

from .helpers import run_module


def test_prune_in_check_mode_shows_the_removal_and_keeps_the_files(monkeypatch, tmp_path):
    internal = tmp_path / "tls"
    (internal / "old.home.arpa").mkdir(parents=True)
    for entry in ("fullchain.pem", "privkey.pem"):
        (internal / "old.home.arpa" / entry).write_text("pem\n")
    state = tmp_path / "tls-certificates.json"
    state.write_text(json.dumps({"acme": [], "internal": ["old.home.arpa"]}))
    monkeypatch.setattr(tls_state, "INTERNAL_TLS_DIR", str(internal))
    monkeypatch.setattr(tls_state, "LETSENCRYPT_DIR", str(tmp_path / "letsencrypt"))
    monkeypatch.setattr(tls_state, "NGINX_DIR", str(tmp_path / "nginx"))
    args = dict(prune=True, certificates=[], internal_certificates=[], state_file=str(state))

    failed, result = run_module(monkeypatch, acme_certificates, args, check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert result["removed"] == [dict(kind="internal", name="old.home.arpa")]
    assert result["diff"][0]["before"] == "internal certificate old.home.arpa\n"
    assert os.path.exists(internal / "old.home.arpa" / "fullchain.pem")

    failed, result = run_module(monkeypatch, acme_certificates, args)
    assert not failed and result["changed"] and not os.path.exists(internal / "old.home.arpa")
    assert json.loads(state.read_text()) == {"acme": [], "internal": []}
    failed, result = run_module(monkeypatch, acme_certificates, args)
    assert not failed and not result["changed"]


def test_issuing_still_needs_an_email(monkeypatch, tmp_path):
    failed, result = run_module(monkeypatch, acme_certificates, dict(
        webroot=str(tmp_path), certificates=[dict(name="a.example.org", domains=["a.example.org"])]))
    assert failed and "email: required" in result["msg"]
