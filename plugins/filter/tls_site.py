# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The selfhost.pi.nginx_site options of one site's HTTPS (module_utils/tls.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.selfhost.pi.plugins.module_utils import tls

DOCUMENTATION = r"""
name: tls_site
author: selfhost.pi contributors
version_added: 0.2.0
short_description: The nginx_site options (certificate, key, ACME challenge root, CA file) of one site
description:
  - Given a site's domain and its C(tls) mode, returns the C(selfhost.pi.nginx_site) options for its HTTPS;
    C(certificate) and C(certificate_key) (certbot's C(/etc/letsencrypt/live/DOMAIN/) for V(acme) and V(acme-dns), the
    host CA's C(/etc/selfhost-pi/tls/DOMAIN/) for V(internal)), C(acme_challenge_root) for V(acme) (HTTP-01 renewals
    through the site's port 80) and C(ca_certificate) for V(internal) (the CA's root served for devices to trust).
  - An empty dict for V(off).
options:
  _input:
    description: The site's domain.
    type: str
    required: true
  mode:
    description: The site's C(tls) (V(acme), V(acme-dns), V(internal), V(off)); null means V(acme) when O(acme_email) is set.
    type: str
  acme_email:
    description: C(acme_email), or null.
    type: str
"""

EXAMPLES = r"""
- name: Serve the blog, over HTTPS when it has a certificate
  selfhost.pi.nginx_site:
    name: blog
    server_name: ["{{ blog_domain }}"]
    root: /srv/blog/current
    certificate: "{{ site_tls.certificate | default(omit) }}"
    certificate_key: "{{ site_tls.certificate_key | default(omit) }}"
    acme_challenge_root: "{{ site_tls.acme_challenge_root | default(omit) }}"
  vars:
    site_tls: "{{ blog_domain | selfhost.pi.tls_site(blog_tls | default(none), acme_email | default(none)) }}"
"""

RETURN = r"""
_value:
  description: The options, or an empty dict for V(off).
  type: dict
"""


def tls_site(domain, mode=None, acme_email=None):
    return tls.site_options(tls.normalize_mode(mode) or tls.default_mode(acme_email), domain)


class FilterModule(object):
    def filters(self):
        return {"tls_site": tls_site}
