# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTPS per site: which certificate each site gets, where it lives, and the option checks.

Every site with a domain (the blog, each service's ``domain``, the webhook's)
declares ``tls``: ``acme`` (HTTP-01 through nginx's webroot), ``acme-dns``
(DNS-01 with RFC 2136), ``internal`` (the host's own CA) or ``off``. Without a
declaration a site gets ``acme`` once ``acme_email`` is set, else ``off``.

Certificates follow their issuer's layout, named by the site's domain:
certbot's ``/etc/letsencrypt/live/DOMAIN/{fullchain,privkey}.pem`` for ACME,
``/etc/selfhost-pi/tls/DOMAIN/{fullchain,privkey}.pem`` for the internal CA.
The nginx side (``nginx.render_site``) only uses a certificate whose files
exist: a site whose certificate was never issued stays on HTTP.

Pure functions: the checks return messages naming the field; callers raise
:class:`errors.ValidationError` or fail the play with them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    ACME_WEBROOT, CA_DIR, INTERNAL_TLS_DIR, LETSENCRYPT_DIR, TLS_MODES)

CA_CERTIFICATE = CA_DIR + "/ca.crt"
CA_KEY = CA_DIR + "/ca.key"

ACME_MODES = ("acme", "acme-dns")
TSIG_ALGORITHMS = ("HMAC-MD5", "HMAC-SHA1", "HMAC-SHA224", "HMAC-SHA256", "HMAC-SHA384", "HMAC-SHA512")
# Suffixes no public CA can issue for (RFC 6762 .local, RFC 8375 .home.arpa, ICANN's
# .internal, and the names people use on their LANs). .test and .example are left
# alone: they are reserved for tests, which is where a test CA such as pebble runs.
PRIVATE_SUFFIXES = ("lan", "home", "local", "localdomain", "localhost", "internal", "intranet", "corp",
                    "private", "home.arpa", "invalid", "onion")
LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_mode(mode):
    """``mode`` as a string; YAML reads an unquoted ``off`` as false, which means ``off`` too. None stays None."""
    if mode is None or mode == "":
        return None
    if mode is False or str(mode).lower() in ("false", "no"):
        return "off"
    return str(mode)


def default_mode(acme_email):
    """The mode of a site that declares none: ``acme`` once ``acme_email`` is set, else ``off``."""
    return "acme" if acme_email else "off"


def certificate_paths(mode, domain):
    """(fullchain, private key) paths of ``domain``'s certificate in ``mode``; None for ``off``."""
    name = str(domain).lower().rstrip(".")
    if mode in ACME_MODES:
        base = "%s/live/%s" % (LETSENCRYPT_DIR, name)
    elif mode == "internal":
        base = "%s/%s" % (INTERNAL_TLS_DIR, name)
    else:
        return None
    return base + "/fullchain.pem", base + "/privkey.pem"


def _is_ip(name):
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def domain_errors(mode, domain, field):
    """Why ``domain`` cannot get a certificate in ``mode`` (messages naming ``field``)."""
    name = str(domain or "").lower().rstrip(".")
    if mode == "off":
        return []
    if not name:
        return ["%s: tls %s needs a domain" % (field, mode)]
    if name.startswith("~") or name == "_":
        return ["%s: %r is a regular expression or a catch-all server_name; a certificate needs a host name"
                % (field, domain)]
    wildcard = name.startswith("*.")
    labels = (name[2:] if wildcard else name).split(".")
    if _is_ip(name) or not all(LABEL_RE.match(label) for label in labels):
        return ["%s: %r is not a host name a certificate can be issued for" % (field, domain)]
    if mode in ACME_MODES:
        if len(labels) < 2 or any(name == s or name.endswith("." + s) for s in PRIVATE_SUFFIXES):
            return ["%s: %r is not a public name, so an ACME CA cannot issue a certificate for it;"
                    " use tls: internal (the host's own CA) for LAN names" % (field, domain)]
        if wildcard and mode == "acme":
            return ["%s: %r is a wildcard; ACME CAs issue wildcards only through DNS-01 (tls: acme-dns)"
                    % (field, domain)]
    return []


def acme_dns_errors(acme_dns, field="acme_dns"):
    """Checks of the RFC 2136 settings (server, port, key_name, key_algorithm, key_secret)."""
    errors = []
    acme_dns = acme_dns or {}
    if not acme_dns.get("server"):
        errors.append("%s.server: required for tls: acme-dns (the DNS server that takes RFC 2136 updates"
                      " signed with the TSIG key)" % field)
    elif not re.match(r"^[A-Za-z0-9.:-]+$", str(acme_dns["server"])):
        errors.append("%s.server: %r must be an IP address or a host name" % (field, acme_dns["server"]))
    for key in ("key_name", "key_secret"):
        if not acme_dns.get(key):
            errors.append("%s.%s: required for tls: acme-dns" % (field, key))
    if acme_dns.get("key_name") and not re.match(r"^[A-Za-z0-9._-]+$", str(acme_dns["key_name"])):
        errors.append("%s.key_name: %r must be a TSIG key name (letters, digits, '.', '-', '_')"
                      % (field, acme_dns["key_name"]))
    secret = str(acme_dns.get("key_secret") or "")
    if secret and not re.match(r"^[A-Za-z0-9+/]+=*$", secret):
        errors.append("%s.key_secret: must be the base64 TSIG secret (as tsig-keygen prints it)" % field)
    algorithm = str(acme_dns.get("key_algorithm", "HMAC-SHA512")).upper()
    if algorithm not in TSIG_ALGORITHMS:
        errors.append("%s.key_algorithm: %r is not one of %s"
                      % (field, acme_dns.get("key_algorithm"), ", ".join(TSIG_ALGORITHMS)))
    port = acme_dns.get("port", 53)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors.append("%s.port: %r must be a port number 1-65535" % (field, port))
    return errors


def sites(blog_domain=None, blog_tls=None, services=None, webhook_domain=None, webhook_tls=None):
    """Every site that has a domain, as dicts (site, field, domain, tls); ``tls`` None when undeclared."""
    found = []
    if blog_domain:
        found.append(dict(site="blog", field="blog_tls", domain=blog_domain, tls=blog_tls))
    for index, spec in enumerate(services or []):
        if spec.get("domain"):
            found.append(dict(site=spec.get("name"), field="service_specs[%d].tls" % index,
                              domain=spec["domain"], tls=spec.get("tls")))
    if webhook_domain:
        found.append(dict(site="webhook", field="webhook_tls", domain=webhook_domain, tls=webhook_tls))
    return found


def mode_errors(mode, field):
    """A message naming ``field`` when ``mode`` is not one of the four modes."""
    if mode not in TLS_MODES:
        return ["%s: %r is not one of %s" % (field, mode, ", ".join(TLS_MODES))]
    return []


def plan(declared, acme_email=None, acme_dns=None):
    """The certificates ``declared`` sites need, and the errors that stop the play.

    ``declared`` is :func:`sites`' list. Returns a dict: ``certificates``, one per
    site whose mode is not ``off`` (site, field, domain, mode, certificate,
    certificate_key), and ``errors``, messages naming the field.
    """
    errors, certificates, dns_needed = [], [], False
    default = default_mode(acme_email)
    for entry in declared:
        mode = normalize_mode(entry.get("tls")) or default
        field = entry["field"]
        problems = mode_errors(mode, field)
        if not problems:
            if mode in ACME_MODES and not acme_email:
                problems.append("%s: tls %s needs acme_email (the ACME account's contact address)" % (field, mode))
            problems += domain_errors(mode, entry["domain"], field)
        errors += problems
        if problems or mode == "off":
            continue
        dns_needed = dns_needed or mode == "acme-dns"
        fullchain, key = certificate_paths(mode, entry["domain"])
        domain = str(entry["domain"]).lower().rstrip(".")
        certificate = dict(site=entry["site"], field=field, domain=domain, mode=mode, certificate=fullchain,
                           certificate_key=key)
        if mode in ACME_MODES:  # the acme_certificates module's entry: a certbot lineage named after the domain
            certificate["lineage"] = dict(name=domain, domains=[domain],
                                          challenge="dns-01" if mode == "acme-dns" else "http-01")
        certificates.append(certificate)
    if dns_needed:
        errors += acme_dns_errors(acme_dns)
    elif acme_dns and not (acme_dns or {}).get("server") and any(acme_dns.get(k) for k in ("key_name", "key_secret")):
        errors.append("acme_dns.server: a TSIG key is set but no server to send the updates to")
    return dict(certificates=certificates, errors=errors)


def site_options(mode, domain):
    """The nginx_site options of a site's HTTPS in ``mode`` (an empty dict for ``off``)."""
    paths = certificate_paths(mode, domain)
    if paths is None:
        return {}
    options = dict(certificate=paths[0], certificate_key=paths[1])
    if mode == "acme":
        options["acme_challenge_root"] = ACME_WEBROOT
    if mode == "internal":
        options["ca_certificate"] = CA_CERTIFICATE
    return options


HTPASSWD_LINE_RE = re.compile(r"^[^:\s#][^:\s]*:\S+$")


def htpasswd_errors(content, field):
    """Checks of htpasswd content (``user:hash`` lines, as ``htpasswd -nB USER`` prints them).

    The messages name the line, never its content: it is a secret.
    """
    lines = [line.strip() for line in str(content or "").splitlines() if line.strip()]
    if not lines:
        return ["%s: no user:hash line" % field]
    errors = []
    for number, line in enumerate(lines, 1):
        if not HTPASSWD_LINE_RE.match(line):
            errors.append("%s: line %d is not user:hash (make one with htpasswd -nB USER)" % (field, number))
        elif not line.split(":", 1)[1].startswith(("$2y$", "$2b$", "$2a$", "$y$", "$6$", "$5$", "$apr1$", "{SSHA}")):
            errors.append("%s: line %d has a password that is not hashed with bcrypt ($2y$), yescrypt ($y$),"
                          " SHA-crypt ($5$, $6$), $apr1$ or {SSHA}" % (field, number))
    return errors
