# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The certificates a host's sites need, and the checks of their ``tls`` options.

The rules live in module_utils/tls.py, shared with the selfhost.pi.services
module (which resolves each service's certificate the same way).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.selfhost.pi.plugins.module_utils import tls

DOCUMENTATION = r"""
name: tls_plan
author: selfhost.pi contributors
version_added: 0.2.0
short_description: The certificates of every site with a domain, and errors naming the field
description:
  - Collects every site that has a domain (the blog's C(blog_domain), each C(service_specs) entry's C(domain), the
    webhook's C(webhook_domain)) with its C(tls) mode; a site that declares none gets V(acme) once C(acme_email) is set,
    else V(off).
  - Returns the certificates to issue (one per site whose mode is not V(off)) and one message per bad option, each
    naming the field; a C(tls) value that is not V(acme), V(acme-dns), V(internal) or V(off); an ACME mode without
    C(acme_email); a name an ACME CA cannot issue for (C(*.lan), C(*.home.arpa), a single label, an IP address);
    a wildcard with V(acme) (HTTP-01); V(acme-dns) without C(acme_dns.server), C(key_name) or C(key_secret), or a TSIG
    key without a server.
options:
  _input:
    description: C(acme_email), or null.
    type: str
    required: true
  blog_domain:
    description: The blog's domain, or null.
    type: str
  blog_tls:
    description: The blog's C(blog_tls), or null.
    type: str
  services:
    description: The C(service_specs) list.
    type: list
    elements: dict
  webhook_domain:
    description: The webhook's domain, or null.
    type: str
  webhook_tls:
    description: The webhook's C(webhook_tls), or null.
    type: str
  acme_dns:
    description: The C(acme_dns) settings (C(server), C(port), C(key_name), C(key_algorithm), C(key_secret)), or null.
    type: dict
"""

EXAMPLES = r"""
- name: Refuse bad tls options before anything changes
  ansible.builtin.assert:
    that: plan.errors | length == 0
    fail_msg: "{{ plan.errors | join('; ') }}"
  vars:
    plan: "{{ acme_email | default(none) | selfhost.pi.tls_plan(blog_domain=blog_domain, services=service_specs) }}"
"""

RETURN = r"""
_value:
  description: C(certificates) (site, field, domain, mode, certificate, certificate_key) and C(errors).
  type: dict
"""


def tls_plan(acme_email, blog_domain=None, blog_tls=None, services=None, webhook_domain=None, webhook_tls=None,
             acme_dns=None):
    declared = tls.sites(blog_domain=blog_domain, blog_tls=blog_tls, services=services,
                         webhook_domain=webhook_domain, webhook_tls=webhook_tls)
    return tls.plan(declared, acme_email=acme_email, acme_dns=acme_dns)


class FilterModule(object):
    def filters(self):
        return {"tls_plan": tls_plan}
