#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: acme_certificates
short_description: ACME certificates with Debian's certbot, asking the CA only when something changed
version_added: 0.2.0
author:
  - selfhost.pi maintainers (@selfhost)
description:
  - Makes sure each listed certificate exists as a certbot lineage in certbot's own layout,
    C(/etc/letsencrypt/live/NAME/fullchain.pem) and C(privkey.pem), with C(/etc/letsencrypt/renewal/NAME.conf) so that
    Debian's C(certbot.timer) (C(certbot -q renew), twice a day) renews it with the same challenge.
  - Reads the host first; the renewal configuration (C(server), C(authenticator)) and the certificate's DNS names and
    expiry. It runs C(certbot certonly) only for a lineage that is missing, names other domains, came from another
    O(directory) or challenge, or expires within O(renew_days). A converge where nothing changed does not talk to the CA.
  - C(http-01) uses certbot's C(webroot) authenticator; nginx keeps running and serves the challenge files from
    O(webroot) (the C(selfhost.pi.nginx_site) option C(acme_challenge_root), and the C(selfhost.pi.nginx) role's default
    server for names that have no site yet). C(dns-01) uses the C(dns-rfc2136) plugin (Debian's
    C(python3-certbot-dns-rfc2136)) with the credentials file O(dns_credentials).
  - When a lineage nginx already uses got new files, nginx is reloaded (C(systemctl reload nginx.service), never
    restarted) if it runs.
  - With O(prune=true) it issues nothing and removes what is no longer declared instead; see O(prune).
  - Why a module; deciding whether to call the CA needs the renewal configuration and the certificate's names and
    expiry, and a failed issuance must leave the other certificates issued and the play going (O(on_failure=warn)).
options:
  certificates:
    description: The certificates (certbot lineages).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Lineage name (C(--cert-name)), by convention the first domain.
        type: str
        required: true
      domains:
        description: DNS names of the certificate (C(-d)), lower case. Wildcards need O(certificates[].challenge=dns-01).
        type: list
        elements: str
        required: true
      challenge:
        description: V(http-01) (certbot C(--authenticator webroot)) or V(dns-01) (C(--authenticator dns-rfc2136)).
        type: str
        default: http-01
        choices: [http-01, dns-01]
  email:
    description:
      - Contact address of the ACME account (certbot C(--email)); certbot registers the account on first use.
      - Required unless O(prune=true).
    type: str
  directory:
    description:
      - ACME directory URL (certbot C(--server)). A lineage issued from another directory (for example Let's Encrypt's
        staging one) is issued again from this one.
    type: str
    default: https://acme-v02.api.letsencrypt.org/directory
  webroot:
    description: Directory certbot writes C(.well-known/acme-challenge/TOKEN) files into (certbot C(--webroot-path)).
    type: path
  dns_credentials:
    description:
      - The 0600 certbot-dns-rfc2136 credentials file (C(dns_rfc2136_server), C(dns_rfc2136_port), C(dns_rfc2136_name),
        C(dns_rfc2136_secret), C(dns_rfc2136_algorithm)); certbot C(--dns-rfc2136-credentials).
    type: path
  dns_propagation_seconds:
    description: Seconds certbot waits after the DNS update before asking for validation (C(--dns-rfc2136-propagation-seconds)).
    type: int
    default: 60
  key_type:
    description: Key type of new certificates (certbot C(--key-type)).
    type: str
    default: ecdsa
    choices: [ecdsa, rsa]
  renew_days:
    description: A certificate with fewer days left is renewed by this module as well (certbot.timer normally renewed it before).
    type: int
    default: 30
  on_failure:
    description:
      - V(warn) reports a failed issuance as a warning and returns RV(failed_certificates), so a site without its
        certificate stays on HTTP and the play goes on. V(fail) fails the module (after trying every certificate).
    type: str
    default: warn
    choices: [warn, fail]
  prune:
    description:
      - V(true) issues nothing. It records in O(state_file) the certificates of O(certificates) and
        O(internal_certificates) that exist on the host the collection's way (a renewal configuration using O(webroot)
        or O(dns_credentials); C(/etc/selfhost-pi/tls/NAME/fullchain.pem)), and removes those recorded earlier that
        are no longer listed; C(certbot delete --non-interactive --cert-name NAME) for an ACME one, the directory
        C(/etc/selfhost-pi/tls/NAME) with its C(fullchain.pem) and C(privkey.pem) for an internal one.
      - A certificate never recorded (made by hand with certbot, or before it was declared) is never removed. One that
        an nginx configuration (C(/etc/nginx/sites-enabled), C(conf.d)) still names, or an internal directory holding
        other files, is kept with a warning (check mode reports it as removed, since the sites are not rewritten then).
      - Run it after the sites were written, so no site names a certificate that is gone.
    type: bool
    default: false
  internal_certificates:
    description: With O(prune=true), the names of the declared certificates of the host's own CA (C(tls=internal)).
    type: list
    elements: str
    default: []
  state_file:
    description: With O(prune=true), the JSON record of the certificates the collection made (C(acme) and C(internal) name lists).
    type: path
    default: /var/lib/selfhost-pi/tls-certificates.json
attributes:
  check_mode:
    support: full
    description:
      - Reads the host and reports which certificates would be requested, with the reason, or removed (O(prune=true));
        never runs certbot, writes or removes nothing.
  diff_mode:
    support: full
    description: Names, directory and challenge of each certificate before and after; each certificate O(prune=true) removes.
notes:
  - Requires root, and Debian's C(certbot) (plus C(python3-certbot-dns-rfc2136) for V(dns-01)) installed.
  - The account key and certificates live under C(/etc/letsencrypt); back that directory up so a rebuilt host does not
    request new certificates (Let's Encrypt allows 50 per registered domain per week).
seealso:
  - name: certbot user guide
    description: Lineages, the renewal configuration, C(--webroot), hooks.
    link: https://eff-certbot.readthedocs.io/en/stable/using.html
  - name: certbot-dns-rfc2136
    description: The RFC 2136 (TSIG) DNS plugin and its credentials file.
    link: https://certbot-dns-rfc2136.readthedocs.io/
"""

EXAMPLES = r"""
- name: One certificate by HTTP-01 through nginx, one by DNS-01
  selfhost.pi.acme_certificates:
    email: admin@example.org
    webroot: /var/lib/selfhost-pi/acme
    dns_credentials: /etc/selfhost-pi/acme/rfc2136.ini
    certificates:
      - name: blog.example.org
        domains: [blog.example.org]
      - name: nas.example.org
        domains: [nas.example.org]
        challenge: dns-01

- name: After the sites were written, remove the certificates no longer declared
  selfhost.pi.acme_certificates:
    prune: true
    webroot: /var/lib/selfhost-pi/acme
    certificates:
      - {name: blog.example.org, domains: [blog.example.org]}
    internal_certificates: [nas.home.arpa]

- name: Against Let's Encrypt's staging directory, failing the play on any error
  selfhost.pi.acme_certificates:
    email: admin@example.org
    directory: https://acme-staging-v02.api.letsencrypt.org/directory
    webroot: /var/lib/selfhost-pi/acme
    on_failure: fail
    certificates:
      - {name: test.example.org, domains: [test.example.org]}
"""

RETURN = r"""
certificates:
  description: One entry per certificate.
  returned: unless O(prune=true)
  type: list
  elements: dict
  contains:
    name:
      description: Lineage name.
      type: str
    domains:
      description: Its DNS names.
      type: list
      elements: str
    certificate:
      description: Path of C(fullchain.pem).
      type: str
    certificate_key:
      description: Path of C(privkey.pem).
      type: str
    reason:
      description: Why certbot ran (or would run), for example V(missing) or V(names a -> a,b); null when nothing was needed.
      type: str
    issued:
      description: Whether certbot issued it in this run.
      type: bool
    error:
      description: certbot's error when it could not issue it.
      type: str
      returned: on failure
failed_certificates:
  description: Names of the certificates certbot could not issue.
  returned: unless O(prune=true)
  type: list
  elements: str
reloaded:
  description: Whether nginx was reloaded because a certificate it uses got new files.
  returned: unless O(prune=true)
  type: bool
removed:
  description: The certificates removed (in check mode, that would be removed), each with its C(kind) (V(acme) or V(internal)) and C(name).
  returned: when O(prune=true)
  type: list
  elements: dict
kept:
  description: Names of certificates no longer declared but kept (an nginx configuration still names them).
  returned: when O(prune=true)
  type: list
  elements: str
recorded:
  description: The record after this run, C(acme) and C(internal) name lists.
  returned: when O(prune=true)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils import certbot, nginx, tls_state
from ansible_collections.selfhost.pi.plugins.module_utils.constants import ACME_DIRECTORY
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost


def run(host, params):
    """Converge the certificates; return (result, failures). Raises SelfhostError."""
    result, failures = certbot.converge(host, params)
    result["failed_certificates"] = [c["name"] for c in result["certificates"] if c.get("error")]
    result["reloaded"] = False
    if result["renewed"]:
        result["reloaded"], message = nginx.reload_nginx(host)
        if not result["reloaded"]:
            host.warn(message)
    return result, failures


def main():
    module = AnsibleModule(
        argument_spec=dict(
            certificates=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                domains=dict(type="list", elements="str", required=True),
                challenge=dict(type="str", default="http-01", choices=["http-01", "dns-01"]),
            )),
            email=dict(type="str"),
            directory=dict(type="str", default=ACME_DIRECTORY),
            webroot=dict(type="path"),
            dns_credentials=dict(type="path"),
            dns_propagation_seconds=dict(type="int", default=60),
            key_type=dict(type="str", default="ecdsa", choices=["ecdsa", "rsa"]),
            renew_days=dict(type="int", default=certbot.RENEW_DAYS),
            on_failure=dict(type="str", default="warn", choices=["warn", "fail"]),
            prune=dict(type="bool", default=False),
            internal_certificates=dict(type="list", elements="str", default=[]),
            state_file=dict(type="path", default=tls_state.TLS_STATE),
        ),
        supports_check_mode=True,
    )
    host = ModuleHost(module)
    if module.params["prune"]:
        try:
            result = tls_state.prune(host, module.params)
        except SelfhostError as exc:
            fail_module(module, exc)
            return
        diff = result.pop("diff")
        if module._diff and diff:
            result["diff"] = diff
        module.exit_json(**result)
        return
    try:
        result, failures = run(host, module.params)
    except SelfhostError as exc:
        fail_module(module, exc)
        return
    diff = result.pop("diff")
    result.pop("renewed")
    if module._diff and diff:
        result["diff"] = diff
    if failures and module.params["on_failure"] == "fail":
        module.fail_json(msg="certbot could not issue: %s" % "; ".join(failures), **result)
    for failure in failures:
        module.warn("certificate not issued, its site stays on HTTP (or its previous certificate): %s" % failure)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
