# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACME certificates through Debian's certbot, checked locally first.

A certificate is a certbot lineage named after the site's domain
(``/etc/letsencrypt/live/NAME/``, ``renewal/NAME.conf``). The converge asks the
CA only when the lineage is missing, names other domains, was issued by
another directory or another challenge, or is due (less than
``renew_days`` left, that is certbot.timer did not renew it). Everything
else is read from the host: the renewal configuration and the certificate's
names and expiry. Renewals are certbot's own (Debian's certbot.timer runs
``certbot renew``); its deploy hook reloads nginx.

A failed issuance raises :class:`errors.CommandError` with certbot's own
lines; the caller decides whether that fails the play or only warns (a site
whose certificate was never issued stays on HTTP).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re

from ansible_collections.selfhost.pi.plugins.module_utils.constants import LETSENCRYPT_DIR
from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError, ValidationError

CHALLENGES = ("http-01", "dns-01")
AUTHENTICATORS = {"http-01": "webroot", "dns-01": "dns-rfc2136"}
RENEW_DAYS = 30   # certbot's own renew_before_expiry default
NAME_RE = re.compile(r"^[a-z0-9*][a-z0-9.*-]*$")


def renewal_conf(name, base=None):
    """The top-level and [renewalparams] keys of certbot's ``renewal/NAME.conf`` (an empty dict when absent)."""
    path = os.path.join(base or LETSENCRYPT_DIR, "renewal", "%s.conf" % name)
    values = {}
    try:
        with open(path) as handle:
            for line in handle:
                line = line.strip()
                if not line or line.startswith(("#", "[")) or "=" not in line:
                    continue
                key, value = line.split("=", 1)
                values.setdefault(key.strip(), value.strip())
    except (IOError, OSError):
        return {}
    return values


def certificate_facts(path):
    """(sorted DNS names, notAfter as an aware datetime) of a PEM certificate, or None when unreadable."""
    try:
        from cryptography import x509  # python3-cryptography: a dependency of Debian's certbot
        from cryptography.x509.oid import ExtensionOID
    except ImportError:
        raise HostStateError("python3-cryptography is missing on the host (Debian's certbot depends on it)")
    try:
        with open(path, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
    except (IOError, OSError, ValueError):
        return None
    try:
        names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        dns = sorted(n.lower() for n in names.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = []
    not_after = getattr(cert, "not_valid_after_utc", None)
    if not_after is None:
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return dns, not_after


def validate(params):
    """Messages naming the field (``certificates[i].domains``, ``webroot``, ...)."""
    errors = []
    seen = set()
    for index, cert in enumerate(params.get("certificates") or []):
        field = "certificates[%d]" % index
        name = str(cert.get("name") or "")
        if not NAME_RE.match(name) or name in seen:
            errors.append("%s.name: %r must be a unique lower-case domain-like lineage name" % (field, name))
        seen.add(name)
        domains = cert.get("domains") or []
        if not domains:
            errors.append("%s.domains: at least one domain" % field)
        for dindex, domain in enumerate(domains):
            if not NAME_RE.match(str(domain)):
                errors.append("%s.domains[%d]: %r is not a lower-case host name" % (field, dindex, domain))
        challenge = cert.get("challenge", "http-01")
        if challenge not in CHALLENGES:
            errors.append("%s.challenge: %r is not one of %s" % (field, challenge, ", ".join(CHALLENGES)))
        elif challenge == "http-01" and not params.get("webroot"):
            errors.append("webroot: required for http-01 (used by %s)" % field)
        elif challenge == "http-01" and any(str(d).startswith("*") for d in domains):
            errors.append("%s.domains: wildcards need challenge dns-01" % field)
        elif challenge == "dns-01" and not params.get("dns_credentials"):
            errors.append("dns_credentials: required for dns-01 (used by %s)" % field)
    if not params.get("email"):
        errors.append("email: required (the ACME account's contact)")
    return errors


class Lineage(object):
    """One wanted certificate and what certbot has for it on the host."""

    def __init__(self, spec, params, base=None, now=None):
        self.name = spec["name"]
        self.domains = sorted(set(str(d).lower() for d in spec["domains"]))
        self.challenge = spec.get("challenge", "http-01")
        self.params = params
        base = base or LETSENCRYPT_DIR
        self.fullchain = os.path.join(base, "live", self.name, "fullchain.pem")
        self.privkey = os.path.join(base, "live", self.name, "privkey.pem")
        self.conf = renewal_conf(self.name, base)
        facts = certificate_facts(self.fullchain) if os.path.exists(self.fullchain) else None
        self.names, self.not_after = facts if facts else (None, None)
        self.reason = self._reason(now or datetime.datetime.now(datetime.timezone.utc))

    def _reason(self, now):
        """Why certbot must run, or None when the lineage is what is wanted."""
        if not self.conf or self.names is None or not os.path.exists(self.privkey):
            return "missing"
        if self.names != self.domains:
            return "names %s -> %s" % (",".join(self.names), ",".join(self.domains))
        if self.conf.get("server") != self.params["directory"]:
            return "directory %s -> %s" % (self.conf.get("server"), self.params["directory"])
        if self.conf.get("authenticator") != AUTHENTICATORS[self.challenge]:
            return "challenge %s -> %s" % (self.conf.get("authenticator"), AUTHENTICATORS[self.challenge])
        if self.not_after - now < datetime.timedelta(days=self.params.get("renew_days", RENEW_DAYS)):
            return "due (expires %s)" % self.not_after.strftime("%Y-%m-%d")
        return None

    def argv(self, certbot):
        """certbot certonly for this lineage: non-interactive, webroot or RFC 2136."""
        params = self.params
        argv = [certbot, "certonly", "--non-interactive", "--agree-tos", "--email", params["email"],
                "--server", params["directory"], "--cert-name", self.name, "--key-type", params["key_type"]]
        for domain in self.domains:
            argv += ["-d", domain]
        if self.challenge == "http-01":
            argv += ["--authenticator", "webroot", "--webroot-path", params["webroot"]]
        else:
            argv += ["--authenticator", "dns-rfc2136", "--dns-rfc2136-credentials", params["dns_credentials"],
                     "--dns-rfc2136-propagation-seconds", str(params["dns_propagation_seconds"])]
        if self.reason and not self.reason.startswith(("missing", "due")):
            argv.append("--force-renewal")  # other names, directory or challenge: certbot would keep the old one
        return argv

    def diff(self):
        before = "(absent)\n" if self.names is None else "%s (%s, %s, until %s)\n" % (
            ",".join(self.names), self.conf.get("server"), self.conf.get("authenticator"),
            self.not_after.strftime("%Y-%m-%d"))
        after = "%s (%s, %s)\n" % (",".join(self.domains), self.params["directory"],
                                   AUTHENTICATORS[self.challenge])
        return {"before_header": self.fullchain, "after_header": self.fullchain, "before": before, "after": after}


def converge(host, params, base=None):
    """Issue what is missing or outdated; return (result, failures).

    ``failures`` lists one message per certificate certbot could not issue;
    the others are issued all the same. Raises ValidationError on bad input.
    """
    errors = validate(params)
    if errors:
        raise ValidationError("; ".join(errors))
    lineages = [Lineage(spec, params, base) for spec in params.get("certificates") or []]
    todo = [lineage for lineage in lineages if lineage.reason]
    results, failures, renewed = [], [], False
    certbot = host.which("certbot", required=bool(todo) and not host.check_mode)
    for lineage in lineages:
        entry = dict(name=lineage.name, domains=lineage.domains, certificate=lineage.fullchain,
                     certificate_key=lineage.privkey, reason=lineage.reason, issued=False)
        if lineage.reason and not host.check_mode:
            rc, out, err = host.run(lineage.argv(certbot), check=False)
            if rc == 0:
                entry["issued"] = True
                renewed = renewed or lineage.names is not None
            else:
                tail = "; ".join(line.strip() for line in (err or out).strip().splitlines()[-4:] if line.strip())
                entry["error"] = "certbot certonly failed (rc=%d): %s" % (rc, tail)
                failures.append("%s: %s" % (lineage.name, entry["error"]))
        results.append(entry)
    changed = bool(todo) if host.check_mode else any(entry["issued"] for entry in results)
    result = dict(changed=changed, certificates=results, renewed=renewed,
                  diff=[lineage.diff() for lineage in todo])
    return result, failures
