"""The HTTPS option checks (module_utils/tls.py): every message names the field."""
import pytest

from ansible_collections.selfhost.pi.plugins.filter.tls_plan import tls_plan
from ansible_collections.selfhost.pi.plugins.filter.tls_site import tls_site
from ansible_collections.selfhost.pi.plugins.module_utils import tls

DNS = dict(server="192.0.2.53", key_name="acme-update", key_algorithm="HMAC-SHA512", key_secret="c2VjcmV0")
SERVICES = [dict(name="app", domain="app.example.org"), dict(name="nas", domain="nas.lan", tls="internal"),
            dict(name="nodomain")]


def plan(**kwargs):
    args = dict(blog_domain="blog.example.org", services=SERVICES, webhook_domain="hooks.example.org")
    args.update(kwargs)
    email = args.pop("acme_email", "admin@example.org")
    return tls_plan(email, **args)


def test_acme_is_the_default_once_acme_email_is_set():
    result = plan()
    assert result["errors"] == []
    modes = dict((c["site"], c["mode"]) for c in result["certificates"])
    assert modes == {"blog": "acme", "app": "acme", "nas": "internal", "webhook": "acme"}
    blog = result["certificates"][0]
    assert blog["certificate"] == "/etc/letsencrypt/live/blog.example.org/fullchain.pem"
    assert blog["certificate_key"] == "/etc/letsencrypt/live/blog.example.org/privkey.pem"
    assert blog["lineage"] == dict(name="blog.example.org", domains=["blog.example.org"], challenge="http-01")
    nas = [c for c in result["certificates"] if c["site"] == "nas"][0]
    assert nas["certificate"] == "/etc/selfhost-pi/tls/nas.lan/fullchain.pem" and "lineage" not in nas


def test_without_acme_email_every_site_stays_off():
    result = plan(acme_email=None, services=[dict(name="app", domain="app.example.org")])
    assert result == dict(certificates=[], errors=[])


@pytest.mark.parametrize("value", [False, "off", "False"])
def test_yaml_off_read_as_false_means_off(value):
    assert plan(blog_tls=value, services=[], webhook_domain=None)["certificates"] == []


@pytest.mark.parametrize("value", ["https", "ACME", "letsencrypt", "on", True])
def test_a_bad_tls_value_names_the_field(value):
    errors = plan(services=[dict(name="app", domain="app.example.org", tls=value)])["errors"]
    assert errors == ["service_specs[0].tls: %r is not one of acme, acme-dns, internal, off" % str(value)]


def test_bad_blog_and_webhook_values_name_their_variables():
    errors = plan(blog_tls="yes please", webhook_tls="tls", services=[])["errors"]
    assert [e.split(":")[0] for e in errors] == ["blog_tls", "webhook_tls"]


@pytest.mark.parametrize("domain", ["nas.lan", "printer.home.arpa", "pi.local", "box.internal", "localhost",
                                    "router", "192.168.1.10", "pi.localdomain"])
def test_a_name_no_acme_ca_can_issue_for_is_refused(domain):
    errors = plan(services=[dict(name="app", domain=domain)], blog_domain=None, webhook_domain=None)["errors"]
    assert len(errors) == 1 and errors[0].startswith("service_specs[0].tls: %r" % domain), errors
    assert "tls: internal" in errors[0] or "not a host name" in errors[0]


def test_the_same_lan_name_is_fine_with_the_internal_ca():
    result = plan(services=[dict(name="app", domain="nas.lan", tls="internal")], blog_domain=None,
                  webhook_domain=None)
    assert result["errors"] == [] and result["certificates"][0]["mode"] == "internal"


def test_a_wildcard_needs_dns_01():
    errors = plan(blog_domain="*.example.org", services=[], webhook_domain=None)["errors"]
    assert errors == ["blog_tls: '*.example.org' is a wildcard; ACME CAs issue wildcards only through DNS-01"
                      " (tls: acme-dns)"]
    assert plan(blog_domain="*.example.org", blog_tls="acme-dns", acme_dns=DNS, services=[],
                webhook_domain=None)["errors"] == []


def test_acme_modes_need_acme_email():
    errors = plan(acme_email=None, blog_tls="acme", services=[], webhook_domain=None)["errors"]
    assert errors == ["blog_tls: tls acme needs acme_email (the ACME account's contact address)"]


def test_acme_dns_needs_a_server_and_a_key():
    errors = plan(blog_tls="acme-dns", services=[], webhook_domain=None)["errors"]
    assert [e.split(":")[0] for e in errors] == ["acme_dns.server", "acme_dns.key_name", "acme_dns.key_secret"]


def test_a_dns_01_key_without_a_server_is_refused():
    key = dict(DNS)
    del key["server"]
    errors = plan(blog_tls="acme-dns", acme_dns=key, services=[], webhook_domain=None)["errors"]
    assert errors == ["acme_dns.server: required for tls: acme-dns (the DNS server that takes RFC 2136 updates"
                      " signed with the TSIG key)"]
    # Even when no site uses DNS-01 yet, a key without a server is a mistake worth saying.
    errors = plan(acme_dns=key, services=[], webhook_domain=None)["errors"]
    assert errors == ["acme_dns.server: a TSIG key is set but no server to send the updates to"]


@pytest.mark.parametrize("field,value,message", [
    ("key_algorithm", "hmac-sha999", "acme_dns.key_algorithm: 'hmac-sha999' is not one of"),
    ("key_secret", "not base64!", "acme_dns.key_secret: must be the base64 TSIG secret"),
    ("port", 70000, "acme_dns.port: 70000 must be a port number"),
    ("server", "ns1; rm -rf", "acme_dns.server: 'ns1; rm -rf' must be an IP address or a host name"),
])
def test_bad_rfc2136_settings_name_the_field(field, value, message):
    settings = dict(DNS, **{field: value})
    errors = plan(blog_tls="acme-dns", acme_dns=settings, services=[], webhook_domain=None)["errors"]
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_site_options_per_mode():
    assert tls_site("blog.example.org", None, None) == {}
    assert tls_site("blog.example.org", "off", "a@b.org") == {}
    assert tls_site("Blog.Example.org.", None, "a@b.org") == dict(
        certificate="/etc/letsencrypt/live/blog.example.org/fullchain.pem",
        certificate_key="/etc/letsencrypt/live/blog.example.org/privkey.pem",
        acme_challenge_root="/var/lib/selfhost-pi/acme")
    assert "acme_challenge_root" not in tls_site("x.example.org", "acme-dns")
    assert tls_site("nas.lan", "internal")["ca_certificate"] == "/etc/selfhost-pi/ca/ca.crt"


def test_regex_server_names_cannot_get_a_certificate():
    errors = tls.domain_errors("internal", "~^www\\.", "service_specs[0].tls")
    assert errors and errors[0].startswith("service_specs[0].tls:")


def test_htpasswd_content_is_checked_without_showing_it():
    assert tls.htpasswd_errors("alice:$2y$05$abcdefghijklmnopqrstuu1234567890123456789012345678901\n", "basic_auth") == []
    errors = tls.htpasswd_errors("alice:hunter2\nbob\n", "service_specs[0].basic_auth")
    assert errors == ["service_specs[0].basic_auth: line 1 has a password that is not hashed with bcrypt ($2y$),"
                      " yescrypt ($y$), SHA-crypt ($5$, $6$), $apr1$ or {SSHA}",
                      "service_specs[0].basic_auth: line 2 is not user:hash (make one with htpasswd -nB USER)"]
    assert "hunter2" not in " ".join(errors)
    assert tls.htpasswd_errors("", "basic_auth") == ["basic_auth: no user:hash line"]
