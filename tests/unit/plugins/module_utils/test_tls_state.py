"""Certificates no longer declared go, and only those the collection made (module_utils/tls_state.py).

certbot cannot run here: a fake host records `certbot delete` and removes the
lineage the way certbot does. Internal certificates are real files in a
temporary directory, removed for real.
"""
import json
import os

from ansible_collections.selfhost.pi.plugins.module_utils import tls_state

from .test_certbot import make_lineage

WEBROOT = "/var/lib/selfhost-pi/acme"
CREDENTIALS = "/etc/selfhost-pi/acme/rfc2136.ini"


class FakeHost:
    def __init__(self, base, check_mode=False):
        self.base = base
        self.check_mode = check_mode
        self.calls = []
        self.warnings = []

    def which(self, name, required=False):
        return "/usr/bin/" + name

    def run(self, argv, check=True, **kwargs):
        self.calls.append(argv)
        assert argv[1] == "delete" and "--non-interactive" in argv
        name = argv[argv.index("--cert-name") + 1]
        for path in (os.path.join(self.base, "live", name, "fullchain.pem"),
                     os.path.join(self.base, "live", name, "privkey.pem"),
                     os.path.join(self.base, "renewal", name + ".conf")):
            os.unlink(path)
        os.rmdir(os.path.join(self.base, "live", name))
        return 0, "Deleted all files relating to certificate %s.\n" % name, ""

    def warn(self, msg):
        self.warnings.append(msg)


def our_lineage(le, name, dns=False):
    make_lineage(le, name, [name], authenticator="dns-rfc2136" if dns else "webroot")
    with open(os.path.join(le, "renewal", name + ".conf"), "a") as handle:
        handle.write("dns_rfc2136_credentials = %s\n" % CREDENTIALS if dns else "webroot_path = %s,\n" % WEBROOT)


def internal_cert(internal, name):
    os.makedirs(os.path.join(internal, name))
    for entry in ("fullchain.pem", "privkey.pem"):
        with open(os.path.join(internal, name, entry), "w") as handle:
            handle.write("pem\n")


def layout(tmp_path):
    paths = {k: str(tmp_path / k) for k in ("le", "internal", "nginx", "state")}
    for key in ("le", "internal", "state"):
        os.makedirs(paths[key])
    os.makedirs(os.path.join(paths["nginx"], "sites-enabled"))
    paths["state_file"] = os.path.join(paths["state"], "tls-certificates.json")
    return paths


def prune(paths, acme=(), internal=(), check_mode=False):
    host = FakeHost(paths["le"], check_mode)
    params = dict(certificates=[dict(name=n, domains=[n]) for n in acme], internal_certificates=list(internal),
                  state_file=paths["state_file"], webroot=WEBROOT, dns_credentials=CREDENTIALS)
    result = tls_state.prune(host, params, letsencrypt=paths["le"], internal_dir=paths["internal"],
                             nginx_dir=paths["nginx"])
    return host, result


def test_declared_certificates_are_recorded_then_removed_when_no_longer_declared(tmp_path):
    paths = layout(tmp_path)
    our_lineage(paths["le"], "app.example.org")
    our_lineage(paths["le"], "nas.example.org", dns=True)
    internal_cert(paths["internal"], "hooks.home.arpa")
    host, result = prune(paths, acme=["app.example.org", "nas.example.org"], internal=["hooks.home.arpa"])
    assert result["changed"] and result["removed"] == [] and host.calls == []
    with open(paths["state_file"]) as handle:
        assert json.load(handle) == {"acme": ["app.example.org", "nas.example.org"], "internal": ["hooks.home.arpa"]}
    host, result = prune(paths, acme=["app.example.org", "nas.example.org"], internal=["hooks.home.arpa"])
    assert not result["changed"]

    # Check mode: reported with a diff, nothing touched.
    host, result = prune(paths, acme=["app.example.org"], check_mode=True)
    assert result["changed"] and host.calls == []
    assert result["removed"] == [dict(kind="acme", name="nas.example.org"), dict(kind="internal", name="hooks.home.arpa")]
    assert [d["before"] for d in result["diff"]] == ["acme certificate nas.example.org\n",
                                                     "internal certificate hooks.home.arpa\n"]
    assert os.path.isdir(os.path.join(paths["internal"], "hooks.home.arpa"))
    assert os.path.exists(os.path.join(paths["le"], "renewal", "nas.example.org.conf"))

    host, result = prune(paths, acme=["app.example.org"])
    assert result["changed"]
    assert host.calls == [["/usr/bin/certbot", "delete", "--non-interactive", "--cert-name", "nas.example.org"]]
    assert not os.path.exists(os.path.join(paths["internal"], "hooks.home.arpa"))
    assert os.path.exists(os.path.join(paths["le"], "renewal", "app.example.org.conf"))
    with open(paths["state_file"]) as handle:
        assert json.load(handle) == {"acme": ["app.example.org"], "internal": []}
    host, result = prune(paths, acme=["app.example.org"])
    assert not result["changed"] and host.calls == []


def test_a_certificate_made_by_hand_is_never_removed(tmp_path):
    paths = layout(tmp_path)
    make_lineage(paths["le"], "mine.example.org", ["mine.example.org"])  # certbot --standalone by a person
    our_lineage(paths["le"], "other.example.org")  # by hand, with the collection's webroot, never declared
    host, result = prune(paths, acme=["mine.example.org"])
    assert not result["changed"] and not os.path.exists(paths["state_file"])  # not made the collection's way
    host, result = prune(paths)
    assert not result["changed"] and host.calls == []
    assert os.path.exists(os.path.join(paths["le"], "renewal", "mine.example.org.conf"))
    assert os.path.exists(os.path.join(paths["le"], "renewal", "other.example.org.conf"))


def test_a_certificate_a_site_still_names_is_kept_with_a_warning(tmp_path):
    paths = layout(tmp_path)
    our_lineage(paths["le"], "blog.example.org")
    internal_cert(paths["internal"], "lan.home.arpa")
    prune(paths, acme=["blog.example.org"], internal=["lan.home.arpa"])
    with open(os.path.join(paths["nginx"], "sites-enabled", "blog.conf"), "w") as handle:
        handle.write("ssl_certificate %s/live/blog.example.org/fullchain.pem;\n" % paths["le"])
    with open(os.path.join(paths["internal"], "lan.home.arpa", "notes.txt"), "w") as handle:
        handle.write("a person's file\n")
    host, result = prune(paths)
    assert result["removed"] == [] and host.calls == []
    assert result["kept"] == ["blog.example.org", "lan.home.arpa"]
    assert len(host.warnings) == 2 and "blog.conf" in host.warnings[0] and "did not write" in host.warnings[1]
    assert os.path.exists(os.path.join(paths["internal"], "lan.home.arpa", "fullchain.pem"))


def test_a_certificate_deleted_by_hand_leaves_the_record(tmp_path):
    paths = layout(tmp_path)
    internal_cert(paths["internal"], "gone.home.arpa")
    prune(paths, internal=["gone.home.arpa"])
    for entry in ("fullchain.pem", "privkey.pem"):
        os.unlink(os.path.join(paths["internal"], "gone.home.arpa", entry))
    os.rmdir(os.path.join(paths["internal"], "gone.home.arpa"))
    host, result = prune(paths)
    assert result["changed"] and result["removed"] == []
    with open(paths["state_file"]) as handle:
        assert json.load(handle) == {"acme": [], "internal": []}
