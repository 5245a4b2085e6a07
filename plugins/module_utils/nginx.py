# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nginx sites in Debian's layout, validated in place with ``nginx -t``.

A site is one file, ``sites-available/NAME.conf``, enabled by the symlink
``sites-enabled/NAME.conf``. nginx can only check a server block together with
the rest of its configuration, so changes are put in place, ``nginx -t`` runs,
and on failure every touched path is put back exactly as it was (hard-linked
backups renamed over the new files). The running nginx never sees a failing
configuration: it is reloaded only after a passing test.

Plain functions and classes, so a module that converges many sites at once can
validate them all, apply them together, run ``nginx -t`` once and reload once.
Validation and rendering are pure; applying takes a :mod:`host` object, raises
:mod:`errors` (never ``fail_json``) and reloads nginx through
:class:`systemd.Systemctl`, never restarting it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import os
import re

from ansible_collections.selfhost.pi.plugins.module_utils.constants import HSTS_MAX_AGE, HTTPS_LISTEN, NGINX_LISTEN
from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError, HostStateError
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, read_text
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl

CONF_DIR = "/etc/nginx"
FILE_MODE = 0o644
FILE_OWNER = "root"
FILE_GROUP = "root"
HEADER = "# Managed by selfhost.pi.nginx_site; local edits are overwritten.\n"
UNIT = "nginx.service"

DEFAULT_PROXY_HEADERS = (
    ("Host", "$host"),
    ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Forwarded-Host", "$host"),
)
WEBSOCKET_HEADERS = (
    ("Upgrade", "$http_upgrade"),
    ("Connection", "$http_connection"),
)


def site_argument_spec():
    """The module's options; a composite module can reuse them as suboptions."""
    return dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        server_name=dict(type="list", elements="str"),
        listen=dict(type="list", elements="str", default=list(NGINX_LISTEN)),
        proxy_pass=dict(type="str", no_log=False),
        root=dict(type="path"),
        index=dict(type="list", elements="str", default=["index.html"]),
        proxy_connect_timeout=dict(type="int", default=5),
        proxy_read_timeout=dict(type="int", default=60),
        proxy_send_timeout=dict(type="int", default=60),
        client_max_body_size=dict(type="str", default="10m"),
        proxy_headers=dict(type="dict", default={}),
        websocket=dict(type="bool", default=False),
        directives=dict(type="list", elements="str", default=[]),
        location_directives=dict(type="list", elements="str", default=[]),
        access_log=dict(type="str"),
        reload=dict(type="bool", default=True),
        certificate=dict(type="path"),
        certificate_key=dict(type="path"),
        https_listen=dict(type="list", elements="str", default=list(HTTPS_LISTEN)),
        redirect=dict(type="bool", default=True),
        hsts_max_age=dict(type="int", default=HSTS_MAX_AGE),
        hsts_preload=dict(type="bool", default=False),
        acme_challenge_root=dict(type="path"),
        ca_certificate=dict(type="path"),
        auth_basic_user_file=dict(type="path"),
        auth_basic_realm=dict(type="str", default="Restricted"),
    )


# Modern TLS for every HTTPS server (Mozilla's "intermediate" profile: TLS 1.2
# and 1.3, forward-secret AEAD ciphers). No OCSP stapling: Let's Encrypt ended
# its OCSP service in 2025, and an internal CA has none.
TLS_DIRECTIVES = (
    "ssl_protocols TLSv1.2 TLSv1.3;",
    "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
    "ssl_prefer_server_ciphers off;",
    "ssl_session_cache shared:selfhost_tls:10m;",
    "ssl_session_timeout 1d;",
    "ssl_session_tickets off;",
)
ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/"
CA_CERTIFICATE_PATH = "/.well-known/selfhost-pi-ca.crt"   # the internal CA's root, for devices to trust


# --------------------------------------------------------------------------
# Validation: every message names the offending field.

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
SIZE_RE = re.compile(r"^\d+[kKmMgG]?$")
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
TOKEN_RE = re.compile(r"""^[^\s;{}'"#\\]+$""")          # one bare nginx word
PARAMS_RE = re.compile(r"""^[^\s;{}'"#\\]+( [^\s;{}'"#\\]+)*$""")  # words separated by single spaces
SERVER_NAME_RE = re.compile(r"""^[^\s;{}'"#]*[^\s;{}'"#\\]$""")  # a word; regex names may use \.
# No "$": a variable in proxy_pass lets the client pick the upstream (with
# http://127.0.0.1:$http_x_port, any loopback port), so the URL is a constant.
PROXY_PASS_RE = re.compile(r"""^https?://[^\s;{}'"#\\$]+$""")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
LOG_PREFIX_RE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ")


# How nginx splits its configuration into words (src/core/ngx_conf_file.c,
# ngx_conf_read_token): space, tab, CR and LF separate words; ";" ends a
# directive, "{" opens a block and "}" closes one; a word that starts with a
# quote runs to the matching quote and must be followed by a space, ";" or "{";
# a backslash takes the next character literally, inside quotes or not; "#"
# starts a comment that runs to the end of the line ONLY where a word could
# start: inside a word ("a#b") it is an ordinary character, and so are quotes
# and "}" there.
SPACES = " \t\r\n"
RAW_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ESCAPES = {"t": "\t", "r": "\r", "n": "\n", '"': '"', "'": "'", "\\": "\\"}


def _unescape(word):
    out, index = [], 0
    while index < len(word):
        char = word[index]
        if char == "\\" and index + 1 < len(word) and word[index + 1] in ESCAPES:
            out.append(ESCAPES[word[index + 1]])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _skip_word(text, index, stop):
    """Index of the first character in ``stop`` at or after ``index``, jumping over escaped characters."""
    while index < len(text) and text[index] not in stop:
        index += 2 if text[index] == "\\" else 1
    return min(index, len(text))


def read_statements(text):
    """Split ``text`` as nginx reads it: a list of (words, end), ``end`` being ";", "{" or "}".

    ``words`` is empty for "}". A directive still open at the end of ``text``
    comes last with ``end`` None. Raises ValueError where nginx would stop with
    "unexpected ..." (a ";" or "{" without a directive, a "}" after words, a
    character glued to a closing quote, a quote never closed).
    """
    statements, words, index, size = [], [], 0, len(text)
    while index < size:
        char = text[index]
        if char in SPACES:
            index += 1
        elif char == "#":  # a comment, because a word could start here
            newline = text.find("\n", index)
            index = size if newline < 0 else newline + 1
        elif char in ";{":
            if not words:
                raise ValueError("unexpected %r without a directive before it" % char)
            statements.append((words, char))
            words, index = [], index + 1
        elif char == "}":
            if words:
                raise ValueError("unexpected '}' after %r: the directive is not terminated by ';'" % " ".join(words))
            statements.append(([], char))
            index += 1
        elif char in "\"'":
            end = _skip_word(text, index + 1, char)
            if end >= size:
                raise ValueError("the quote %s opened in %r is never closed" % (char, text[index:index + 20]))
            words.append(_unescape(text[index + 1:end]))
            index = end + 1
            if index < size and text[index] not in SPACES + ";{":
                raise ValueError("unexpected %r right after the quoted %r" % (text[index], words[-1]))
        else:  # a bare word: "#", quotes and "}" inside it are part of it
            end = _skip_word(text, index, SPACES + ";{")
            words.append(_unescape(text[index:end]))
            index = end
    if words:
        statements.append((words, None))
    return statements


def _check_raw(field, values, errors, level):
    """Raw directives must read, to nginx, as whole directives and blocks inside their block.

    Each entry is checked as it is rendered (indented, one line per line), so
    what is checked is byte for byte what nginx reads.
    """
    for index, value in enumerate(values):
        where = "%s[%d]" % (field, index)
        text = "\n".join(_indent(value or "", level))
        if RAW_CONTROL_RE.search(value or ""):
            errors.append("%s: %r must not contain control characters other than tab and newline" % (where, value))
            continue
        try:
            statements = read_statements(text)
        except ValueError as exc:
            errors.append("%s: %r is not read by nginx as whole directives: %s" % (where, value, exc))
            continue
        if not statements:
            errors.append("%s: %r holds no directive" % (where, value))
            continue
        problem = _raw_problem(field, value, statements)
        if problem:
            errors.append("%s: %s" % (where, problem))


def _raw_problem(field, value, statements):
    depth = 0
    for words, end in statements:
        if end is None:
            return "%r: the last directive %r must end with ';' or '}'" % (value, " ".join(words))
        if end == "}" and depth == 0:
            return ("%r: its '}' would close the block the entry is rendered in; each entry must balance its braces"
                    % value)
        if field == "location_directives" and depth == 0 and words[0] == "proxy_set_header":
            return ("use proxy_headers instead; a proxy_set_header inside location / would make nginx drop the"
                    " default headers set at server level")
        depth += {"{": 1, "}": -1}.get(end, 0)
    if depth:
        return "%r: %d block(s) opened with '{' are never closed" % (value, depth)
    return None


def validate_site(params):
    """Return a list of error messages for a site's parameters (empty when valid)."""
    errors = []
    name = params.get("name") or ""
    if not NAME_RE.match(name):
        errors.append("name: %r must match %s" % (name, NAME_RE.pattern))
    if params.get("state", "present") == "absent":
        return errors

    server_names = params.get("server_name") or []
    if not server_names:
        errors.append("server_name: at least one name is required with state=present")
    for index, value in enumerate(server_names):
        if not SERVER_NAME_RE.match(value or ""):
            errors.append("server_name[%d]: %r must be one word without spaces, quotes, ';', '{', '}', '#'"
                          % (index, value))

    listens = params.get("listen") or []
    if not listens:
        errors.append("listen: at least one address is required")
    for index, value in enumerate(listens):
        if not PARAMS_RE.match((value or "").strip()):
            errors.append("listen[%d]: %r is not an nginx listen value such as '80', '[::]:80', '443 ssl'"
                          % (index, value))

    proxy_pass, root = params.get("proxy_pass"), params.get("root")
    if proxy_pass and root:
        errors.append("proxy_pass, root: set only one of them")
    elif not proxy_pass and not root:
        errors.append("proxy_pass, root: one of them is required with state=present")
    if proxy_pass and not PROXY_PASS_RE.match(proxy_pass):
        errors.append("proxy_pass: %r must be a constant http:// or https:// URL (e.g. http://127.0.0.1:8080 or"
                      " http://unix:/run/app.sock:) without nginx variables ($), spaces, quotes, ';', '{', '}'"
                      % proxy_pass)
    if root is not None:
        if not root.startswith("/"):
            errors.append("root: %r must be an absolute path" % root)
        elif not TOKEN_RE.match(root):
            errors.append("root: %r must not contain spaces, quotes, ';', '{', '}', '#'" % root)
        if params.get("proxy_headers"):
            errors.append("proxy_headers: only valid with proxy_pass, not with root")
        if params.get("websocket"):
            errors.append("websocket: only valid with proxy_pass, not with root")
    for index, value in enumerate(params.get("index") or []):
        if not TOKEN_RE.match(value or ""):
            errors.append("index[%d]: %r must be one file name without spaces or ';'" % (index, value))

    for field in ("proxy_connect_timeout", "proxy_read_timeout", "proxy_send_timeout"):
        value = params.get(field)
        if value is not None and value < 1:
            errors.append("%s: %s must be at least 1 (seconds)" % (field, value))
    size = str(params.get("client_max_body_size", "10m"))
    if not SIZE_RE.match(size):
        errors.append("client_max_body_size: %r must be a number with an optional k, m or g suffix (0 = unlimited)"
                      % size)

    for header, value in sorted((params.get("proxy_headers") or {}).items()):
        if not HEADER_NAME_RE.match(str(header)):
            errors.append("proxy_headers: %r is not a valid header name" % header)
        if value is None or not isinstance(value, (str, int)) or isinstance(value, bool):
            errors.append("proxy_headers.%s: the value must be a string (\"\" stops passing the header)" % header)
        elif CONTROL_RE.search(str(value)):
            errors.append("proxy_headers.%s: the value must not contain control characters" % header)

    access_log = params.get("access_log")
    if access_log is not None and not PARAMS_RE.match(access_log.strip()):
        errors.append("access_log: %r must be 'off' or 'PATH [FORMAT ...]' without quotes, ';', '{', '}'"
                      % access_log)
    _check_raw("directives", params.get("directives") or [], errors, 1)
    _check_raw("location_directives", params.get("location_directives") or [], errors, 2)
    _check_tls(params, errors)
    return errors


REALM_RE = re.compile(r'^[^"\\\x00-\x1f\x7f]+$')


def _check_tls(params, errors):
    """certificate, certificate_key, https_listen, hsts_max_age, acme_challenge_root, auth_basic_*."""
    certificate, key = params.get("certificate"), params.get("certificate_key")
    if bool(certificate) != bool(key):
        errors.append("certificate, certificate_key: set both or neither")
    for field in ("certificate", "certificate_key", "acme_challenge_root", "ca_certificate", "auth_basic_user_file"):
        value = params.get(field)
        if value is None:
            continue
        if not str(value).startswith("/"):
            errors.append("%s: %r must be an absolute path" % (field, value))
        elif not TOKEN_RE.match(str(value)):
            errors.append("%s: %r must not contain spaces, quotes, ';', '{', '}', '#'" % (field, value))
    if certificate:
        listens = params.get("https_listen") or []
        if not listens:
            errors.append("https_listen: at least one address is required with a certificate")
        for index, value in enumerate(listens):
            words = (value or "").split()
            if not PARAMS_RE.match((value or "").strip()) or "ssl" not in words:
                errors.append("https_listen[%d]: %r is not an nginx listen value with 'ssl', such as '443 ssl'"
                              % (index, value))
    max_age = params.get("hsts_max_age", HSTS_MAX_AGE)
    if max_age is not None and max_age < 0:
        errors.append("hsts_max_age: %s must be 0 (no HSTS header) or more seconds" % max_age)
    if params.get("hsts_preload") and (max_age or 0) < HSTS_MAX_AGE:
        errors.append("hsts_preload: the preload list wants hsts_max_age of at least %d (one year)" % HSTS_MAX_AGE)
    realm = params.get("auth_basic_realm")
    if params.get("auth_basic_user_file") and realm is not None and not REALM_RE.match(str(realm)):
        errors.append("auth_basic_realm: %r must be text without quotes, backslashes or control characters"
                      % realm)


# --------------------------------------------------------------------------
# Rendering: deterministic, so an unchanged declaration gives an unchanged file.

def _quote(value):
    value = str(value)
    if value and TOKEN_RE.match(value):
        return value
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def proxy_headers(params):
    """The (name, value) pairs for proxy_set_header: defaults, overrides, extras."""
    wanted = list(DEFAULT_PROXY_HEADERS)
    if params.get("websocket"):
        wanted.extend(WEBSOCKET_HEADERS)
    extra = dict((str(k), str(v)) for k, v in (params.get("proxy_headers") or {}).items())
    lowered = dict((k.lower(), k) for k in extra)
    result = []
    for header, value in wanted:
        key = lowered.pop(header.lower(), None)
        result.append((header, extra[key] if key is not None else value))
    result.extend((lowered[k], extra[lowered[k]]) for k in sorted(lowered))
    return result


def _indent(text, level):
    pad = "    " * level
    return [pad + line.rstrip() if line.strip() else "" for line in text.strip().splitlines()]


def tls_enabled(params):
    """True when the site has a certificate to serve (both files named)."""
    return bool(params.get("certificate") and params.get("certificate_key"))


def without_missing_certificate(params, exists=os.path.exists):
    """``params``, or a copy served over HTTP only when the certificate's files do not exist (yet).

    Returns (params, warning). A site's configuration never names a certificate
    nginx cannot load: nginx -t would refuse every site, not just this one.
    """
    if not tls_enabled(params):
        return params, None
    missing = [params[f] for f in ("certificate", "certificate_key") if not exists(params[f])]
    if not missing:
        return params, None
    served = dict(params, certificate=None, certificate_key=None)
    return served, ("%s: %s does not exist (yet), so the site is served over HTTP only until its certificate is"
                    " issued" % (params.get("name"), " and ".join(missing)))


def _challenge_location(params):
    """The ACME challenge location and the CA's root certificate, both exempt from basic auth."""
    lines = []
    auth = ["        auth_basic off;"] if params.get("auth_basic_user_file") else []
    root = params.get("acme_challenge_root")
    if root:
        # "^~": no regex location of `directives` takes the challenge path over.
        lines += ["", "    location ^~ %s {" % ACME_CHALLENGE_PATH, "        root %s;" % root,
                  "        default_type text/plain;"] + auth + ["    }"]
    if params.get("ca_certificate"):
        lines += ["", "    location = %s {" % CA_CERTIFICATE_PATH, "        alias %s;" % params["ca_certificate"],
                  "        default_type application/x-x509-ca-cert;"] + auth + ["    }"]
    return lines


def _site_body(params, lines):
    """The server's directives after its listen and server_name lines (what a plain HTTP site always had)."""
    lines.append("")
    lines.append("    client_max_body_size %s;" % params.get("client_max_body_size", "10m"))
    if params.get("access_log"):
        lines.append("    access_log %s;" % " ".join(params["access_log"].split()))
    if params.get("auth_basic_user_file"):
        lines.append('    auth_basic "%s";' % (params.get("auth_basic_realm") or "Restricted"))
        lines.append("    auth_basic_user_file %s;" % params["auth_basic_user_file"])
    lines.append("")
    if params.get("root"):
        lines.append("    root %s;" % params["root"])
        lines.append("    index %s;" % " ".join(params.get("index") or ["index.html"]))
        location = ["try_files $uri $uri/ =404;"]
    else:
        # Server level, so extra locations from `directives` inherit them too.
        lines.append("    proxy_http_version 1.1;")
        lines += ["    proxy_set_header %s %s;" % (h, _quote(v)) for h, v in proxy_headers(params)]
        for field, default in (("proxy_connect_timeout", 5), ("proxy_read_timeout", 60),
                               ("proxy_send_timeout", 60)):
            lines.append("    %s %ds;" % (field, params.get(field) or default))
        location = ["proxy_pass %s;" % params["proxy_pass"]]
    for directive in params.get("directives") or []:
        lines.append("")
        lines += _indent(directive, 1)
    lines += _challenge_location(params)
    lines.append("")
    lines.append("    location / {")
    for directive in location + list(params.get("location_directives") or []):
        lines += _indent(directive, 2)
    lines.append("    }")
    lines.append("}")
    return lines


def _server_head(listens, params):
    lines = ["server {"]
    lines += ["    listen %s;" % " ".join(value.split()) for value in listens]
    lines.append("    server_name %s;" % " ".join(params["server_name"]))
    return lines


def render_site(params):
    """The file content for a present site.

    Without a certificate: one server on ``listen`` (byte for byte what a
    plain HTTP site always was, plus the ACME challenge location when
    ``acme_challenge_root`` is set). With one: a server on ``listen`` that
    answers the ACME challenge and redirects everything else to HTTPS (or
    serves the site too, with ``redirect=false``), and the site's server on
    ``https_listen`` with the certificate, modern TLS settings and HSTS.
    """
    lines = [HEADER.rstrip("\n")]
    if not tls_enabled(params):
        return "\n".join(_site_body(params, lines + _server_head(params["listen"], params))) + "\n"
    if params.get("redirect", True):
        lines += _server_head(params["listen"], params)
        lines += _challenge_location(dict(params, auth_basic_user_file=None))
        lines += ["", "    location / {", "        return 301 https://$host$request_uri;", "    }", "}"]
    else:
        lines = _site_body(params, lines + _server_head(params["listen"], params))
    lines.append("")
    lines += _server_head(params.get("https_listen") or list(HTTPS_LISTEN), params)
    lines.append("")
    lines.append("    ssl_certificate %s;" % params["certificate"])
    lines.append("    ssl_certificate_key %s;" % params["certificate_key"])
    lines += ["    " + directive for directive in TLS_DIRECTIVES]
    max_age = params.get("hsts_max_age", HSTS_MAX_AGE)
    if max_age:
        value = "max-age=%d" % max_age + ("; includeSubDomains; preload" if params.get("hsts_preload") else "")
        lines.append('    add_header Strict-Transport-Security "%s" always;' % value)
    body = _site_body(dict(params, acme_challenge_root=None), [])
    return "\n".join(lines + body) + "\n"


# --------------------------------------------------------------------------
# Applying: put in place, nginx -t, roll back on failure, reload.

def _hidden_name(path, kind):
    # A leading dot keeps it out of nginx's `include sites-enabled/*` glob.
    directory, base = os.path.split(path)
    token = binascii.hexlify(os.urandom(4)).decode("ascii")
    return os.path.join(directory, ".%s.%s-%s" % (base, kind, token))


class Rollback(object):
    """Remember paths before changing them, to put them back exactly as they were."""

    def __init__(self):
        self._saved = []

    def save(self, path):
        backup = None
        if os.path.lexists(path):
            backup = _hidden_name(path, "backup")
            os.link(path, backup, follow_symlinks=False)  # same inode: bytes, mode, owner
        self._saved.append((path, backup))

    def restore(self):
        for path, backup in reversed(self._saved):
            if backup is not None:
                os.rename(backup, path)
            elif os.path.lexists(path):
                os.unlink(path)
        self._saved = []

    def discard(self):
        for dummy, backup in self._saved:
            if backup is not None:
                os.unlink(backup)
        self._saved = []


def _link_state(path):
    if os.path.islink(path):
        return "symlink to %s\n" % os.readlink(path)
    if os.path.lexists(path):
        return "a regular file, not a symlink\n"
    return "(absent)\n"


class Site(object):
    """One site's wanted state compared with the host; ``content=None`` means absent."""

    def __init__(self, name, content=None, conf_dir=None):
        conf_dir = conf_dir or CONF_DIR
        self.name = name
        self.content = content
        self.path = os.path.join(conf_dir, "sites-available", "%s.conf" % name)
        self.enabled_path = os.path.join(conf_dir, "sites-enabled", "%s.conf" % name)
        self.link_before = _link_state(self.enabled_path)
        if content is None:
            self.file = None
            self.before = read_text(self.path)
            self.file_exists = os.path.lexists(self.path)
            self.link_ok = not os.path.lexists(self.enabled_path)
        else:
            self.file = ManagedFile(self.path, content, FILE_MODE, FILE_OWNER, FILE_GROUP)
            self.before = self.file.before
            self.link_ok = (os.path.islink(self.enabled_path)
                            and os.path.realpath(self.enabled_path) == os.path.realpath(self.path))

    @property
    def config_changed(self):
        """True when what nginx reads changes (needs nginx -t and a reload)."""
        if self.file is None:
            return self.file_exists or not self.link_ok
        return self.file.content_changed or not self.link_ok

    @property
    def changed(self):
        return self.config_changed or (self.file is not None and self.file.changed)

    def diff(self):
        after_link = "(absent)\n" if self.file is None else "symlink to %s\n" % self.path
        if self.link_ok:
            after_link = self.link_before
        return [
            {
                "before_header": self.path if self.before is not None else "%s (absent)" % self.path,
                "after_header": self.path if self.content is not None else "%s (absent)" % self.path,
                "before": self.before or "",
                "after": self.content or "",
            },
            {
                "before_header": self.enabled_path,
                "after_header": self.enabled_path,
                "before": self.link_before,
                "after": after_link,
            },
        ]

    def check_layout(self):
        """Raise HostStateError when Debian's sites-* directories are missing."""
        for directory in (os.path.dirname(self.path), os.path.dirname(self.enabled_path)):
            if not os.path.isdir(directory):
                raise HostStateError("%s does not exist: install Debian's nginx package first" % directory)

    def stage(self, rollback):
        """Put the wanted state in place, saving what it replaces in ``rollback``."""
        if self.file is None:
            for path in (self.enabled_path, self.path):
                if os.path.lexists(path):
                    rollback.save(path)
                    os.unlink(path)
            return
        if self.file.content_changed:
            tmp = self.file.write_temp()
            try:
                rollback.save(self.path)
                os.rename(tmp, self.path)
            except Exception:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        if not self.link_ok:
            rollback.save(self.enabled_path)
            tmp = _hidden_name(self.enabled_path, "new")
            os.symlink(self.path, tmp)
            try:
                os.rename(tmp, self.enabled_path)
            except Exception:
                os.unlink(tmp)
                raise


def nginx_errors(output):
    """nginx's error lines on one line, without their timestamp and pid prefix."""
    lines = (LOG_PREFIX_RE.sub(r"nginx: \1 ", line.strip()) for line in output.strip().splitlines())
    return "; ".join(line for line in lines if line)


def nginx_test(host):
    """Run ``nginx -t``; return (rc, stdout, stderr). Raises HostStateError when nginx is missing."""
    return host.run([host.which("nginx", required=True), "-t"], check=False)


def reload_nginx(host, unit=UNIT):
    """Reload nginx if it is running (never start or restart it).

    Returns (reloaded, message). Raises CommandError when the reload itself fails.
    """
    if host.which("systemctl") is None:
        return False, "systemctl not found; nginx was not reloaded"
    systemctl = Systemctl(host)
    try:
        state = systemctl.is_active(unit)
    except CommandError as exc:  # no system manager to ask (a chroot, a container without systemd)
        return False, "cannot tell whether %s runs (%s); the configuration is in place and valid, nginx was not" \
            " reloaded" % (unit, exc)
    if state not in ("active", "reloading"):
        return False, "%s is not running; the configuration is in place and valid, nginx was not started" % unit
    systemctl.reload(unit)
    return True, "%s reloaded" % unit


def _test_staged(host):
    """``nginx -t`` on the staged files: pass its warnings on, raise CommandError when it fails."""
    rc, out, err = nginx_test(host)
    for line in (err or "").splitlines():
        if "[warn]" in line:  # e.g. a conflicting server_name: nginx ignores it, but say so
            host.warn(nginx_errors(line))
    if rc != 0:
        raise CommandError("nginx -t rejected the configuration, so the site files were put back as they were: %s"
                           % nginx_errors(err or out), cmd=[host.which("nginx"), "-t"], rc=rc, stdout=out, stderr=err)


def apply_sites(host, sites, reload=True):
    """Apply the changed ``sites`` together: one ``nginx -t``, one reload.

    Returns a dict with ``reloaded`` and ``msg``. Nothing changes in check mode.
    Raises HostStateError (no Debian layout, no nginx binary, a file operation
    that failed) or CommandError (``nginx -t`` rejected the configuration, with
    its rc, stdout and stderr; a failed reload); whenever the files were already
    touched, every touched path is restored first.
    """
    changed = [site for site in sites if site.changed]
    result = dict(reloaded=False, msg="nothing to change")
    if not changed or host.check_mode:
        if changed:
            result["msg"] = "would change %s" % ", ".join(site.name for site in changed)
        return result
    for site in changed:
        site.check_layout()
    needs_test = [site for site in changed if site.config_changed]
    if needs_test:
        host.which("nginx", required=True)
    rollback = Rollback()
    passed = False
    try:
        try:
            for site in changed:
                site.stage(rollback)
        except (IOError, OSError) as exc:
            raise HostStateError("changing the nginx site files failed, previous files restored: %s" % exc)
        if needs_test:
            _test_staged(host)
        passed = True
    finally:
        if passed:
            rollback.discard()
        else:
            rollback.restore()
    for site in changed:
        if site.file is not None and not site.file.content_changed:
            site.file.apply()  # mode/owner only; nothing nginx reads changes
    result["msg"] = ", ".join(("removed %s" if site.file is None else "updated %s") % site.name for site in changed)
    if needs_test and reload:
        result["reloaded"], message = reload_nginx(host)
        if not result["reloaded"]:
            host.warn(message)
        result["msg"] += "; " + message
    elif needs_test:
        result["msg"] += "; not reloaded (reload=false)"
    return result
