#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: nginx_site
short_description: One nginx reverse-proxy or static site, validated with nginx -t before it goes live
version_added: 0.1.0
author:
  - selfhost.pi maintainers (@selfhost)
description:
  - Writes one nginx C(server) block in Debian's layout, C(/etc/nginx/sites-available/NAME.conf), and enables it with the
    symlink C(/etc/nginx/sites-enabled/NAME.conf). The site either reverse-proxies to an upstream (O(proxy_pass)) with
    standard proxy headers and timeouts, or serves a static document root (O(root)), for example a Hugo C(current) symlink.
  - nginx can only check a server block together with the rest of its configuration. So the module puts the new file in
    place, runs C(nginx -t), and if that fails renames the previous file (and symlink) back, byte for byte, and fails
    with nginx's own error lines. The running nginx keeps serving the old configuration throughout, because it is
    reloaded (C(systemctl reload nginx.service)) only after a passing C(nginx -t). nginx is never restarted, and never
    started when it is not running.
  - Why a custom module; M(ansible.builtin.template) with C(validate=) checks the temporary file on its own, which does
    not work for a fragment that belongs inside nginx's C(http) context and that must be checked along with all other
    sites (duplicate C(server_name), C(listen) conflicts); it also cannot put back a file after a failed check of the
    whole configuration, nor manage the C(sites-enabled) symlink in the same step.
  - Files are written C(0644), owned by C(root:root). The file starts with the comment
    C(# Managed by selfhost.pi.nginx_site; local edits are overwritten.)
options:
  name:
    description:
      - Site name, the file name stem of C(sites-available/NAME.conf) and C(sites-enabled/NAME.conf).
      - Must match C(^[a-zA-Z0-9][a-zA-Z0-9_.-]*$).
    type: str
    required: true
  state:
    description:
      - V(present) writes and enables the site.
      - V(absent) removes the symlink and the file, runs C(nginx -t) and reloads; on a failing test both are put back.
    type: str
    default: present
    choices: [present, absent]
  server_name:
    description:
      - Host names the site answers to. Maps to nginx C(server_name), see U(https://nginx.org/en/docs/http/ngx_http_core_module.html#server_name).
      - Required with O(state=present). Each entry is one word without spaces, quotes, C(;), C({), C(}) or C(#), for
        example V(blog.example.org), V(*.example.org), V(_) or a regular expression such as V(~^www\\.example\\.org$).
      - nginx only warns about a name that another site already uses (and ignores it there); the module passes such
        warnings on.
    type: list
    elements: str
  listen:
    description:
      - Addresses and ports, one C(listen) directive each, for example V(80), V([::]:80), V(127.0.0.1:8080),
        V(443 ssl). Maps to nginx C(listen), see U(https://nginx.org/en/docs/http/ngx_http_core_module.html#listen).
    type: list
    elements: str
    default: ["80", "[::]:80"]
  proxy_pass:
    description:
      - Upstream URL to reverse-proxy C(location /) to, for example V(http://127.0.0.1:8080) or a Unix socket
        V(http://unix:/run/app/app.sock:). Must start with V(http://) or V(https://).
      - A constant; nginx variables (C($)) are refused, because they let the client choose the upstream
        (V(http://127.0.0.1:$http_x_port) would proxy to any port of the host's loopback).
      - Maps to nginx C(proxy_pass), see U(https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_pass).
      - Mutually exclusive with O(root); exactly one of them is required with O(state=present).
      - A proxied site gets at server level (so extra locations in O(directives) inherit them) C(proxy_http_version 1.1),
        the timeouts below and C(proxy_set_header) C(Host $host), C(X-Real-IP $remote_addr),
        C(X-Forwarded-For $proxy_add_x_forwarded_for), C(X-Forwarded-Proto $scheme), C(X-Forwarded-Host $host).
    type: str
  root:
    description:
      - Static document root, an absolute path without spaces, for example a Hugo site's C(current) symlink. It need not
        exist yet. C(location /) then uses C(try_files $uri $uri/ =404;).
      - Maps to nginx C(root), see U(https://nginx.org/en/docs/http/ngx_http_core_module.html#root).
      - Mutually exclusive with O(proxy_pass).
    type: path
  index:
    description:
      - Index files for O(root) sites. Maps to nginx C(index) (ngx_http_index_module). Ignored with O(proxy_pass).
    type: list
    elements: str
    default: [index.html]
  proxy_connect_timeout:
    description:
      - Seconds to wait for a connection to the upstream (nginx C(proxy_connect_timeout), which says it usually cannot
        exceed 75 seconds). At least 1. Only used with O(proxy_pass).
    type: int
    default: 5
  proxy_read_timeout:
    description:
      - Seconds nginx waits between two reads from the upstream (nginx C(proxy_read_timeout)). Raise it for long polling
        or WebSockets that stay idle. At least 1. Only used with O(proxy_pass).
    type: int
    default: 60
  proxy_send_timeout:
    description:
      - Seconds nginx waits between two writes to the upstream (nginx C(proxy_send_timeout)). At least 1. Only used with
        O(proxy_pass).
    type: int
    default: 60
  client_max_body_size:
    description:
      - Largest request body accepted, in bytes with an optional C(k), C(m) or C(g) suffix (nginx size syntax,
        C(^\d+[kKmMgG]?$)); V(0) disables the check. Maps to nginx C(client_max_body_size).
    type: str
    default: 10m
  proxy_headers:
    description:
      - Extra C(proxy_set_header) headers, or overrides of the defaults listed under O(proxy_pass) (names compared
        case-insensitively). Values may use nginx variables such as C($remote_addr); an empty string V("") stops nginx
        from passing that header. Values are quoted when needed.
      - Only valid with O(proxy_pass).
      - With the C(selfhost.pi.nginx) role's http-level C($connection_upgrade) map, O(websocket=true) plus a
        C(Connection) entry with value C($connection_upgrade) gives nginx's documented WebSocket setup.
    type: dict
    default: {}
  websocket:
    description:
      - Pass WebSocket upgrades to the upstream by adding C(proxy_set_header Upgrade $http_upgrade;) and
        C(proxy_set_header Connection $http_connection;).
      - Why this way; nginx's usual C(map $http_upgrade $connection_upgrade) must live in the C(http) context and its
        variable name is global, so a site file cannot safely define it. Forwarding the client's own C(Connection)
        header works without it; C(upgrade) for WebSocket handshakes, C(keep-alive) or C(close) otherwise.
      - "Off by default; then nginx sends C(Connection: close) to the upstream, its safe default for plain HTTP apps."
      - Only valid with O(proxy_pass).
    type: bool
    default: false
  directives:
    description:
      - Extra raw directives inside C(server {}), for what the options do not cover, for example
        V(location /ws/ { proxy_pass http://127.0.0.1:8081; proxy_read_timeout 1h; }) or V(add_header X-Frame-Options DENY;).
      - Each entry must be whole directives and blocks as nginx reads them, so that it can neither close the
        C(server) block nor leave a block open; every directive ends with C(;) or its block's C(}).
        The check splits the entry into words the way nginx does (C(src/core/ngx_conf_file.c)); quotes and a
        backslash escape as in nginx, and C(#) starts a comment only where a word starts (C(a#b) is one word).
        Control characters other than tab and newline are refused.
      - Rendered in order after the generated directives.
    type: list
    elements: str
    default: []
  location_directives:
    description:
      - Extra raw directives inside the main C(location / {}), checked as O(directives) are.
      - C(proxy_set_header) is refused here; use O(proxy_headers), because any C(proxy_set_header) at location level
        makes nginx drop all the ones inherited from server level.
    type: list
    elements: str
    default: []
  access_log:
    description:
      - nginx C(access_log) for this site, for example V(/var/log/nginx/blog.access.log), V(/var/log/nginx/x.log combined)
        or V(off). When unset the directive is left out and the http-level default applies.
    type: str
  reload:
    description:
      - Reload nginx (C(systemctl reload nginx.service)) after a validated change, if it is running.
      - With V(false) the validated files are in place and the next reload picks them up.
    type: bool
    default: true
  certificate:
    description:
      - Certificate chain (leaf first, for example certbot's C(/etc/letsencrypt/live/NAME/fullchain.pem)) of an HTTPS
        server. Maps to nginx C(ssl_certificate), see U(https://nginx.org/en/docs/http/ngx_http_ssl_module.html#ssl_certificate).
      - With it (and O(certificate_key)) the file holds two servers; one on O(listen) that answers the ACME challenge
        path and redirects the rest to HTTPS (O(redirect)), and the site itself on O(https_listen) with TLS 1.2 and 1.3
        only (C(ssl_protocols TLSv1.2 TLSv1.3)), forward-secret AEAD C(ssl_ciphers), C(ssl_session_cache
        shared:selfhost_tls:10m), C(ssl_session_tickets off) and no OCSP stapling (Let's Encrypt ended OCSP in 2025).
      - When the file or O(certificate_key) does not exist (yet), the site is written as a plain HTTP site on O(listen)
        (with the challenge location of O(acme_challenge_root)) and a warning says so; nginx never refers to a
        certificate it cannot load. Run the module again once the certificate is issued.
    type: path
  certificate_key:
    description:
      - Private key of O(certificate). Maps to nginx C(ssl_certificate_key). Set both or neither.
    type: path
  https_listen:
    description:
      - C(listen) values of the HTTPS server, each with C(ssl). Maps to nginx C(listen). Only used with O(certificate).
    type: list
    elements: str
    default: ["443 ssl", "[::]:443 ssl"]
  redirect:
    description:
      - With O(certificate), the server on O(listen) answers C(return 301 https://$host$request_uri;) for everything
        but the ACME challenge path. V(false) serves the site on O(listen) as well (plain HTTP).
    type: bool
    default: true
  hsts_max_age:
    description:
      - Seconds browsers remember to use HTTPS only, sent by the HTTPS server as
        C(add_header Strict-Transport-Security "max-age=N" always;) (nginx C(add_header), RFC 6797). V(0) sends no
        header. Only used with O(certificate).
      - nginx drops server-level C(add_header) lines in a location that has C(add_header) of its own; repeat the
        header there if O(location_directives) add headers.
    type: int
    default: 31536000
  hsts_preload:
    description:
      - Add C(; includeSubDomains; preload) to the HSTS header (for the browsers' preload list; it covers every
        subdomain and is hard to undo). Needs O(hsts_max_age) of a year or more.
    type: bool
    default: false
  acme_challenge_root:
    description:
      - Directory whose C(.well-known/acme-challenge/) files (certbot C(--webroot-path)) the server on O(listen)
        serves, as C(location ^~ /.well-known/acme-challenge/ { root PATH; }), exempt from the redirect and from basic
        auth, so HTTP-01 validations and renewals work while the site is up.
    type: path
  ca_certificate:
    description:
      - A CA's root certificate (PEM) served at C(/.well-known/selfhost-pi-ca.crt) by the site's servers (nginx
        C(location =) with C(alias)), exempt from the redirect and basic auth, so a device can fetch the root it must
        trust before it trusts the site (the C(selfhost.pi.tls) role's internal CA). The file must be readable by nginx's
        workers.
    type: path
  auth_basic_user_file:
    description:
      - An htpasswd file (C(user:hash) lines; nginx reads C(crypt(3)) hashes such as C($6$), C($5$), C($y$)) that every
        request to the site must match. Maps to nginx C(auth_basic_user_file) with C(auth_basic "REALM"), see
        U(https://nginx.org/en/docs/http/ngx_http_auth_basic_module.html). For apps without a login of their own.
        The file must be readable by nginx's workers (C(www-data)).
    type: path
  auth_basic_realm:
    description: The realm shown by browsers, nginx C(auth_basic "REALM"). Only used with O(auth_basic_user_file).
    type: str
    default: Restricted
attributes:
  check_mode:
    support: full
    description: Reports what would change, with a diff; touches nothing and runs neither C(nginx -t) nor a reload.
  diff_mode:
    support: full
    description: The rendered server block before and after, and the state of the C(sites-enabled) symlink.
notes:
  - "Validation of every option runs first; bad input fails with a message naming the field, for example
    C(client_max_body_size: '10 MB' must be a number ...), before anything on the host changes."
  - Fails when C(/etc/nginx/sites-available) or C(/etc/nginx/sites-enabled) is missing (install Debian's nginx package
    first), when the C(nginx) binary is missing and something must change, when C(nginx -t) rejects the configuration
    (returns C(rc), C(stderr); the previous files are back), or when C(systemctl reload) fails.
  - A failing C(nginx -t) refuses the change even when the error is in another file; the message names the file.
    The module does not refuse to run on an already broken configuration, so a broken site can be fixed by running
    the module with good values.
  - When nginx is not running (C(systemctl is-active nginx.service) says anything but V(active) or V(reloading)),
    or no system manager answers, the files are still written and validated, nginx is not started, RV(reloaded) is
    V(false) and a warning says so.
  - Only a change of the file content or of the symlink triggers C(nginx -t) and a reload; a mode or owner fix does not.
  - Requires C(root) on the managed host.
seealso:
  - name: nginx core module
    description: C(server_name), C(listen), C(root), C(client_max_body_size), C(try_files).
    link: https://nginx.org/en/docs/http/ngx_http_core_module.html
  - name: nginx proxy module
    description: C(proxy_pass), C(proxy_set_header), C(proxy_http_version), the C(proxy_*_timeout) directives.
    link: https://nginx.org/en/docs/http/ngx_http_proxy_module.html
"""

EXAMPLES = r"""
- name: Reverse-proxy a rootless Podman service
  selfhost.pi.nginx_site:
    name: gitea
    server_name: [git.example.org]
    proxy_pass: http://127.0.0.1:3000
    client_max_body_size: 512m
    proxy_read_timeout: 300
    websocket: true

- name: Serve the current Hugo release
  selfhost.pi.nginx_site:
    name: blog
    server_name: [blog.example.org, www.blog.example.org]
    root: /srv/blog/current
    directives:
      - "location ~* \\.(css|js|png|jpg|svg|woff2)$ { expires 7d; }"
      - error_page 404 /404.html;

- name: A Unix-socket upstream with an extra header and its own access log
  selfhost.pi.nginx_site:
    name: app
    server_name: [app.example.org]
    listen: ["127.0.0.1:8081"]
    proxy_pass: "http://unix:/run/app/app.sock:"
    proxy_headers:
      X-Forwarded-Host: ""   # do not pass this default header
      X-Request-Id: $request_id
    access_log: /var/log/nginx/app.access.log

- name: HTTPS with a certbot certificate, HTTP redirected, renewals through the webroot
  selfhost.pi.nginx_site:
    name: cloud
    server_name: [cloud.example.org]
    proxy_pass: http://127.0.0.1:8082
    certificate: /etc/letsencrypt/live/cloud.example.org/fullchain.pem
    certificate_key: /etc/letsencrypt/live/cloud.example.org/privkey.pem
    acme_challenge_root: /var/lib/selfhost-pi/acme
    hsts_max_age: 63072000

- name: An app without a login of its own, behind basic auth
  selfhost.pi.nginx_site:
    name: admin
    server_name: [admin.example.org]
    proxy_pass: http://127.0.0.1:8083
    auth_basic_user_file: /etc/nginx/selfhost-htpasswd/admin
    auth_basic_realm: Admin

- name: Remove a site
  selfhost.pi.nginx_site:
    name: old
    state: absent
"""

RETURN = r"""
path:
  description: The site file in C(sites-available).
  returned: always
  type: str
  sample: /etc/nginx/sites-available/blog.conf
enabled_path:
  description: The symlink in C(sites-enabled).
  returned: always
  type: str
  sample: /etc/nginx/sites-enabled/blog.conf
content:
  description: The rendered file content.
  returned: state=present
  type: str
  sample: "# Managed by selfhost.pi.nginx_site; local edits are overwritten.\nserver {\n    listen 80;\n..."
tls:
  description: Whether the site was written with its HTTPS server (V(false) without O(certificate), or while the
    certificate's files do not exist yet).
  returned: always
  type: bool
  sample: true
reloaded:
  description: Whether nginx was reloaded. V(false) when nothing changed, in check mode, with O(reload=false), or when
    nginx is not running.
  returned: always
  type: bool
  sample: true
msg:
  description: What happened, or on failure the error; after a failing C(nginx -t) this holds nginx's error lines.
  returned: always
  type: str
  sample: >-
    nginx -t rejected the configuration, so the site files were put back as they were:
    nginx: [emerg] unknown directive "bogus_directive" in /etc/nginx/sites-enabled/app.conf:21;
    nginx: configuration file /etc/nginx/nginx.conf test failed
rc:
  description: Exit status of C(nginx -t) (or of C(systemctl reload)).
  returned: failed
  type: int
  sample: 1
stderr:
  description: nginx's (or systemctl's) error output.
  returned: failed
  type: str
diff:
  description: Before/after of the file and of the symlink state (only with C(--diff)).
  returned: changed and diff mode
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.pi.plugins.module_utils import nginx as nginx_utils
from ansible_collections.selfhost.pi.plugins.module_utils.errors import SelfhostError, ValidationError, fail_module
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost


def run(host, params, diff=False):
    """Converge one site; return the module's result. Raises SelfhostError."""
    errors = nginx_utils.validate_site(params)
    if errors:
        raise ValidationError("; ".join(errors))
    served, warning = nginx_utils.without_missing_certificate(params)
    if warning and params["state"] == "present":
        host.warn(warning)
    content = nginx_utils.render_site(served) if params["state"] == "present" else None
    site = nginx_utils.Site(params["name"], content)
    result = dict(changed=site.changed, path=site.path, enabled_path=site.enabled_path)
    if content is not None:
        result["content"] = content
        if params["root"] and not os.path.isdir(params["root"]) and not host.check_mode:
            host.warn("root: %s does not exist (yet); nginx answers 404 until it does" % params["root"])
    if site.changed and diff:
        result["diff"] = site.diff()
    result["tls"] = content is not None and nginx_utils.tls_enabled(served)
    result.update(nginx_utils.apply_sites(host, [site], reload=params["reload"]))
    return result


def main():
    module = AnsibleModule(argument_spec=nginx_utils.site_argument_spec(), supports_check_mode=True)
    try:
        result = run(ModuleHost(module), module.params, diff=module._diff)
    except SelfhostError as exc:
        fail_module(module, exc)
    else:
        module.exit_json(**result)


if __name__ == "__main__":
    main()
