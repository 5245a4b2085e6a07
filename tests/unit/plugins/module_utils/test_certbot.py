"""When the converge asks the CA (module_utils/certbot.py): only for a missing, renamed, moved or due lineage.

certbot itself cannot run here (no CA): a fake host records the certbot
command lines instead and, when told to, lays out the lineage certbot would
write. The certificates are real ones, made with the cryptography package.
"""
import datetime
import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import certbot
from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError

DIRECTORY = "https://acme.test/dir"
PARAMS = dict(email="admin@example.org", directory=DIRECTORY, webroot="/var/lib/selfhost-pi/acme",
              dns_credentials="/etc/selfhost-pi/acme/rfc2136.ini", dns_propagation_seconds=5, key_type="ecdsa",
              renew_days=30)


def make_lineage(base, name, names, days=80, server=DIRECTORY, authenticator="webroot"):
    """What certbot leaves on disk: live/NAME/{fullchain,privkey}.pem and renewal/NAME.conf."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    live = os.path.join(base, "live", name)
    os.makedirs(live, exist_ok=True)
    os.makedirs(os.path.join(base, "renewal"), exist_ok=True)
    with open(os.path.join(live, "fullchain.pem"), "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(live, "privkey.pem"), "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(os.path.join(base, "renewal", name + ".conf"), "w") as handle:
        handle.write("version = 4.0.0\narchive_dir = %s/archive/%s\n\n[renewalparams]\nserver = %s\n"
                     "authenticator = %s\nkey_type = ecdsa\n" % (base, name, server, authenticator))


class FakeHost:
    check_mode = False

    def __init__(self, base, rc=0):
        self.base = base
        self.rc = rc
        self.calls = []
        self.warnings = []

    def which(self, name, required=False):
        return "/usr/bin/" + name

    def run(self, argv, check=True, **kwargs):
        self.calls.append(argv)
        if self.rc:
            return self.rc, "", "Saving debug log\nAn unexpected error occurred:\nConnection refused\n"
        name = argv[argv.index("--cert-name") + 1]
        domains = [argv[i + 1] for i, a in enumerate(argv) if a == "-d"]
        make_lineage(self.base, name, domains, server=argv[argv.index("--server") + 1],
                     authenticator=argv[argv.index("--authenticator") + 1])
        return 0, "Successfully received certificate.\n", ""

    def warn(self, msg):
        self.warnings.append(msg)


def converge(tmp_path, certificates, host=None, **params):
    base = str(tmp_path)
    host = host or FakeHost(base)
    args = dict(PARAMS, certificates=certificates, **params)
    result, failures = certbot.converge(host, args, base=base)
    return host, result, failures


def test_a_missing_certificate_is_issued_then_never_asked_for_again(tmp_path):
    wanted = [dict(name="blog.example.org", domains=["blog.example.org"], challenge="http-01")]
    host, result, failures = converge(tmp_path, wanted)
    assert result["changed"] and not failures and result["certificates"][0]["reason"] == "missing"
    argv = host.calls[0]
    assert argv[:2] == ["/usr/bin/certbot", "certonly"] and "--non-interactive" in argv
    assert argv[argv.index("--authenticator") + 1:][:3] == ["webroot", "--webroot-path", "/var/lib/selfhost-pi/acme"]
    assert "--force-renewal" not in argv
    host, result, failures = converge(tmp_path, wanted)
    assert host.calls == [] and not result["changed"]  # names, directory, challenge and expiry read locally


@pytest.mark.parametrize("change,reason", [
    (dict(domains=["blog.example.org", "www.example.org"]), "names blog.example.org -> blog.example.org,www"),
    (dict(challenge="dns-01"), "challenge webroot -> dns-rfc2136"),
])
def test_other_names_or_challenge_force_a_new_certificate(tmp_path, change, reason):
    make_lineage(str(tmp_path), "blog.example.org", ["blog.example.org"])
    wanted = dict(name="blog.example.org", domains=["blog.example.org"], challenge="http-01")
    wanted.update(change)
    host, result, dummy = converge(tmp_path, [wanted])
    assert result["certificates"][0]["reason"].startswith(reason)
    assert "--force-renewal" in host.calls[0]
    if wanted["challenge"] == "dns-01":
        argv = host.calls[0]
        assert argv[argv.index("--dns-rfc2136-credentials") + 1] == "/etc/selfhost-pi/acme/rfc2136.ini"
        assert argv[argv.index("--dns-rfc2136-propagation-seconds") + 1] == "5"


def test_another_directory_means_a_new_certificate(tmp_path):
    make_lineage(str(tmp_path), "blog.example.org", ["blog.example.org"], server="https://staging.test/dir")
    host, result, dummy = converge(tmp_path, [dict(name="blog.example.org", domains=["blog.example.org"])])
    assert result["certificates"][0]["reason"] == "directory https://staging.test/dir -> %s" % DIRECTORY
    assert "--force-renewal" in host.calls[0]


def test_a_due_certificate_is_renewed_without_force(tmp_path):
    make_lineage(str(tmp_path), "blog.example.org", ["blog.example.org"], days=10)
    host, result, dummy = converge(tmp_path, [dict(name="blog.example.org", domains=["blog.example.org"])])
    assert result["certificates"][0]["reason"].startswith("due (expires ")
    assert "--force-renewal" not in host.calls[0]


def test_a_failed_issuance_is_reported_and_the_others_go_on(tmp_path):
    make_lineage(str(tmp_path), "ok.example.org", ["ok.example.org"])
    host = FakeHost(str(tmp_path), rc=1)
    wanted = [dict(name="new.example.org", domains=["new.example.org"]),
              dict(name="ok.example.org", domains=["ok.example.org"])]
    host, result, failures = converge(tmp_path, wanted, host=host)
    assert len(host.calls) == 1 and not result["changed"]
    assert failures == ["new.example.org: certbot certonly failed (rc=1): Saving debug log; An unexpected error"
                        " occurred:; Connection refused"]
    assert not os.path.exists(tmp_path / "live" / "new.example.org")


def test_check_mode_says_what_would_be_asked_and_runs_nothing(tmp_path):
    host = FakeHost(str(tmp_path))
    host.check_mode = True
    host, result, dummy = converge(tmp_path, [dict(name="a.example.org", domains=["a.example.org"])], host=host)
    assert result["changed"] and host.calls == []
    assert result["diff"][0]["before"] == "(absent)\n"


@pytest.mark.parametrize("certificates,params,message", [
    ([dict(name="a.example.org", domains=["*.example.org"], challenge="http-01")], {},
     "certificates[0].domains: wildcards need challenge dns-01"),
    ([dict(name="a.example.org", domains=["a.example.org"], challenge="dns-01")], dict(dns_credentials=None),
     "dns_credentials: required for dns-01 (used by certificates[0])"),
    ([dict(name="a.example.org", domains=["a.example.org"])], dict(webroot=None),
     "webroot: required for http-01 (used by certificates[0])"),
    ([dict(name="A b", domains=["a.example.org"])], {}, "certificates[0].name: 'A b' must be"),
])
def test_bad_input_names_the_field(tmp_path, certificates, params, message):
    with pytest.raises(ValidationError) as info:
        converge(tmp_path, certificates, **params)
    assert str(info.value).startswith(message)
