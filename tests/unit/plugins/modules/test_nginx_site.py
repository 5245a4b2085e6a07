import os
import subprocess

import pytest
from ansible.module_utils import basic

from ansible_collections.selfhost.pi.plugins.module_utils import nginx as nginx_utils
from ansible_collections.selfhost.pi.plugins.modules import nginx_site

from ..nginx_t import make_layout, nginx_t_argv, require_nginx
from .helpers import run_module

PROXY = dict(name="app", server_name=["app.test"], proxy_pass="http://127.0.0.1:8080")
STATIC = dict(name="blog", server_name=["blog.test"], root="/srv/blog/current")


class FakeHost:
    """The real ``nginx -t`` on a temporary Debian layout; a fake systemctl.

    The module's ``nginx -t`` runs as ``nginx -t -p TMP -c TMP/nginx.conf -e stderr``
    (a test skips when nginx is not installed). systemctl is a fake: this machine
    has no system manager and no nginx to reload; it answers is-active and reload.
    """

    def __init__(self, conf):
        self.conf = conf
        self.calls = []
        self.active = True
        self.reload_rc = 0

    def run_command(self, module, args, **kwargs):
        self.calls.append(list(args))
        if os.path.basename(args[0]) == "nginx":
            assert args[1:] == ["-t"], args
            require_nginx()
            proc = subprocess.run(nginx_t_argv(self.conf), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True)
            return proc.returncode, proc.stdout, proc.stderr
        if args[1] == "is-active":
            return (0, "active\n", "") if self.active else (3, "inactive\n", "")
        if args[1] == "reload":
            return self.reload_rc, "", "" if self.reload_rc == 0 else "Job for nginx.service failed.\n"
        raise AssertionError("unexpected command %r" % args)

    def verbs(self):
        return [" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(c)) for c in self.calls]


@pytest.fixture
def host(tmp_path, monkeypatch):
    conf = str(tmp_path / "nginx")
    make_layout(conf)
    fake = FakeHost(conf)
    monkeypatch.setattr(nginx_utils, "CONF_DIR", conf)
    if os.geteuid() != 0:
        monkeypatch.setattr(nginx_utils, "FILE_OWNER", None)
        monkeypatch.setattr(nginx_utils, "FILE_GROUP", None)

    def run_command(module, args, **kwargs):
        return fake.run_command(module, args, **kwargs)

    def get_bin_path(module, name, required=False, opt_dirs=None):
        return "/usr/sbin/" + name

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    return fake


def paths(host, name):
    return (os.path.join(host.conf, "sites-available", name + ".conf"),
            os.path.join(host.conf, "sites-enabled", name + ".conf"))


def listing(host):
    return sorted(os.listdir(os.path.join(host.conf, "sites-available"))) + sorted(
        os.listdir(os.path.join(host.conf, "sites-enabled")))


def test_proxy_site_is_written_enabled_reloaded_then_unchanged(monkeypatch, host):
    failed, result = run_module(monkeypatch, nginx_site, PROXY)
    assert not failed and result["changed"] and result["reloaded"]
    path, enabled = paths(host, "app")
    assert result["path"] == path and result["enabled_path"] == enabled
    text = open(path).read()
    assert text == result["content"]
    assert text.startswith("# Managed by selfhost.pi.nginx_site; local edits are overwritten.\n")
    for line in ("listen 80;", "listen [::]:80;", "server_name app.test;", "proxy_pass http://127.0.0.1:8080;",
                 "proxy_http_version 1.1;", "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                 "proxy_connect_timeout 5s;", "proxy_read_timeout 60s;", "client_max_body_size 10m;"):
        assert line in text
    assert "Upgrade" not in text and "access_log" not in text
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.readlink(enabled) == path
    assert host.verbs() == ["nginx -t", "systemctl is-active nginx.service", "systemctl reload nginx.service"]

    host.calls = []
    failed, result = run_module(monkeypatch, nginx_site, PROXY)
    assert not failed and not result["changed"] and not result["reloaded"]
    assert host.calls == []


def test_static_site(monkeypatch, host):
    args = dict(STATIC, index=["index.html", "index.xml"], server_name=["blog.test", "~^www\\.blog\\.test$"])
    failed, result = run_module(monkeypatch, nginx_site, args)
    assert not failed and result["changed"]
    text = result["content"]
    assert "    server_name blog.test ~^www\\.blog\\.test$;\n" in text
    assert "    root /srv/blog/current;\n    index index.html index.xml;\n" in text
    assert "try_files $uri $uri/ =404;" in text
    assert "proxy_" not in text


def test_check_mode_changes_nothing_and_diffs(monkeypatch, host):
    failed, result = run_module(monkeypatch, nginx_site, PROXY, check_mode=True, diff=True)
    assert not failed and result["changed"] and not result["reloaded"]
    assert listing(host) == [] and host.calls == []
    file_diff, link_diff = result["diff"]
    assert file_diff["before_header"].endswith("(absent)") and "server_name app.test;" in file_diff["after"]
    assert link_diff["before"] == "(absent)\n" and link_diff["after"].startswith("symlink to ")


def test_failed_nginx_test_restores_previous_file_byte_for_byte(monkeypatch, host):
    run_module(monkeypatch, nginx_site, PROXY)
    path, enabled = paths(host, "app")
    with open(path, "ab") as handle:  # odd bytes survive the round trip
        handle.write(b"# caf\xc3\xa9 \xff\n")
    before = open(path, "rb").read()
    inode = os.stat(path).st_ino
    host.calls = []
    failed, result = run_module(monkeypatch, nginx_site, dict(PROXY, directives=["bogus_directive on;"]))
    assert failed and result["rc"] == 1
    assert 'unknown directive "bogus_directive"' in result["msg"] and "put back as they were" in result["msg"]
    assert open(path, "rb").read() == before and os.stat(path).st_ino == inode
    assert os.readlink(enabled) == path
    assert listing(host) == ["app.conf", "app.conf"]  # no temporary or backup files left
    assert host.verbs() == ["nginx -t"]  # and no reload


def test_failed_nginx_test_removes_new_site(monkeypatch, host):
    failed, result = run_module(monkeypatch, nginx_site, dict(PROXY, location_directives=["bogus_directive on;"]))
    assert failed and "bogus_directive" in result["msg"]
    assert listing(host) == []


def test_absent_removes_validates_reloads(monkeypatch, host):
    run_module(monkeypatch, nginx_site, STATIC)
    failed, result = run_module(monkeypatch, nginx_site, dict(name="blog", state="absent"), check_mode=True,
                                diff=True)
    assert result["changed"] and result["diff"][0]["after"] == "" and listing(host) == ["blog.conf", "blog.conf"]
    host.calls = []
    failed, result = run_module(monkeypatch, nginx_site, dict(name="blog", state="absent"))
    assert not failed and result["changed"] and result["reloaded"] and listing(host) == []
    assert host.verbs()[0] == "nginx -t"
    failed, result = run_module(monkeypatch, nginx_site, dict(name="blog", state="absent"))
    assert not failed and not result["changed"]


def test_not_running_nginx_is_not_started(monkeypatch, host):
    host.active = False
    failed, result = run_module(monkeypatch, nginx_site, PROXY)
    assert not failed and result["changed"] and not result["reloaded"]
    assert "not running" in result["msg"]
    assert "systemctl reload nginx.service" not in host.verbs()
    assert not any("start" in verb for verb in host.verbs())


def test_reload_false(monkeypatch, host):
    failed, result = run_module(monkeypatch, nginx_site, dict(PROXY, reload=False))
    assert not failed and result["changed"] and not result["reloaded"]
    assert host.verbs() == ["nginx -t"]


def test_headers_websocket_and_overrides(monkeypatch, host):
    args = dict(PROXY, websocket=True, proxy_headers={"x-forwarded-host": "", "X-Request-Id": "$request_id",
                                                      "X-Note": 'a "b"'})
    failed, result = run_module(monkeypatch, nginx_site, args)
    text = result["content"]
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "proxy_set_header Connection $http_connection;" in text
    assert 'proxy_set_header X-Forwarded-Host "";' in text and "X-Forwarded-Host $host" not in text
    assert text.index("X-Note") < text.index("X-Request-Id")  # extras sorted, after the defaults
    assert 'proxy_set_header X-Note "a \\"b\\"";' in text


def test_wrong_symlink_and_mode_are_fixed(monkeypatch, host):
    run_module(monkeypatch, nginx_site, PROXY)
    path, enabled = paths(host, "app")
    os.chmod(path, 0o600)
    host.calls = []
    failed, result = run_module(monkeypatch, nginx_site, PROXY)
    assert result["changed"] and not result["reloaded"] and host.calls == []  # nothing nginx reads changed
    assert os.stat(path).st_mode & 0o777 == 0o644
    os.unlink(enabled)
    os.symlink("/elsewhere.conf", enabled)
    failed, result = run_module(monkeypatch, nginx_site, PROXY, diff=True)
    assert result["changed"] and result["reloaded"] and os.readlink(enabled) == path
    assert result["diff"][1]["before"] == "symlink to /elsewhere.conf\n"


@pytest.mark.parametrize("args, field", [
    (dict(PROXY, name="../x"), "name:"),
    (dict(PROXY, server_name=["a b"]), "server_name[0]:"),
    (dict(PROXY, server_name=[]), "server_name:"),
    (dict(PROXY, server_name=["x\\"]), "server_name[0]:"),
    (dict(PROXY, listen=["80; evil"]), "listen[0]:"),
    (dict(PROXY, proxy_pass="ftp://x"), "proxy_pass:"),
    (dict(PROXY, root="/srv/x"), "proxy_pass, root:"),
    (dict(name="x", server_name=["x"]), "proxy_pass, root:"),
    (dict(STATIC, root="relative"), "root:"),
    (dict(STATIC, websocket=True), "websocket:"),
    (dict(STATIC, proxy_headers={"X": "y"}), "proxy_headers:"),
    (dict(PROXY, proxy_headers={"Bad Name": "y"}), "proxy_headers:"),
    (dict(PROXY, proxy_headers={"X": "a\nb"}), "proxy_headers.X:"),
    (dict(PROXY, proxy_read_timeout=0), "proxy_read_timeout:"),
    (dict(PROXY, client_max_body_size="10 MB"), "client_max_body_size:"),
    (dict(PROXY, directives=["gzip on"]), "directives[0]:"),
    (dict(PROXY, directives=["location / { }}"]), "directives[0]:"),
    (dict(PROXY, location_directives=["proxy_set_header X y;"]), "location_directives[0]:"),
    (dict(PROXY, access_log="/x; evil"), "access_log:"),
    # nginx reads "#" as a comment only where a word starts: "a#" is a word, so these close
    # the server block (and open another one) or leave a block open behind the check's back.
    (dict(PROXY, directives=["add_header X-A a#; } server { listen 127.0.0.1:8081; server_name evil.test;"]),
     "directives[0]:"),
    (dict(PROXY, directives=["add_header X-A a#{ ;"]), "directives[0]:"),
    (dict(PROXY, directives=["location /a { return 200 a#; } }"]), "directives[0]:"),
    (dict(PROXY, location_directives=["return 200 a#; } location /admin { allow all;"]), "location_directives[0]:"),
    (dict(PROXY, directives=["add_header X \"a}\"; }"]), "directives[0]:"),
    (dict(PROXY, directives=["add_header X a}; location /b { return 200;"]), "directives[0]:"),
    (dict(PROXY, directives=["gzip on;\r}"]), "directives[0]:"),
    (dict(PROXY, location_directives=["gzip on; proxy_set_header X y;"]), "location_directives[0]:"),
    # A variable in proxy_pass lets the client choose the upstream: an open proxy to every loopback port.
    (dict(PROXY, proxy_pass="http://127.0.0.1:$http_x_port"), "proxy_pass:"),
    (dict(PROXY, proxy_pass="http://$http_host"), "proxy_pass:"),
])
def test_bad_input_fails_naming_the_field_before_touching_anything(monkeypatch, host, args, field):
    failed, result = run_module(monkeypatch, nginx_site, args)
    assert failed and field in result["msg"], result["msg"]
    assert listing(host) == [] and host.calls == []


@pytest.mark.parametrize("directive", [
    "add_header X-A a#b;",                       # "#" inside a word is not a comment
    'add_header X-A "a } { ; #";',               # nor anything inside quotes
    "add_header X-A 'it\\'s';",
    "add_header X-A a\\;b;",                    # an escaped ";" is part of the word
    "gzip on; # a comment with } and {",
    "location ~* \\.(css|js)$ {\n    expires 7d;\n}",
    "location /a { location /a/b { return 204; } }",
])
def test_raw_directives_nginx_reads_as_whole_are_accepted(directive):
    params = dict((k, v.get("default")) for k, v in nginx_utils.site_argument_spec().items())
    params.update(PROXY, directives=[directive], location_directives=[directive.replace("location /a", "location /l")])
    assert nginx_utils.validate_site(params) == []


def test_read_statements_follows_nginx():
    read = nginx_utils.read_statements
    assert read("add_header X a#; } server {") == [(["add_header", "X", "a#"], ";"), ([], "}"), (["server"], "{")]
    assert read('return 200 "a\\"b";') == [(["return", "200", 'a"b'], ";")]
    assert read("a b\n# c }\nd;") == [(["a", "b", "d"], ";")]
    assert read("a x}") == [(["a", "x}"], None)]
    for bad in ("; a;", 'a "b"c;', "a 'b;", "a }"):
        with pytest.raises(ValueError):
            read(bad)


def test_render_is_deterministic():
    params = dict((k, v.get("default")) for k, v in nginx_utils.site_argument_spec().items())
    params.update(PROXY, proxy_headers={"B": "2", "A": "1"})
    first = nginx_utils.render_site(params)
    params["proxy_headers"] = {"A": "1", "B": "2"}
    assert nginx_utils.render_site(params) == first


def test_missing_debian_layout_fails_before_writing(monkeypatch, host):
    os.rmdir(os.path.join(host.conf, "sites-enabled"))
    failed, result = run_module(monkeypatch, nginx_site, PROXY, check_mode=True)
    assert not failed and result["changed"]  # check mode works before nginx is installed
    failed, result = run_module(monkeypatch, nginx_site, PROXY)
    assert failed and "sites-enabled does not exist" in result["msg"]
    assert os.listdir(os.path.join(host.conf, "sites-available")) == [] and host.calls == []


def test_nginx_warnings_are_passed_on(monkeypatch, host):
    """The real nginx warns about a server_name another site already answers to (and ignores it)."""
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    failed, result = run_module(monkeypatch, nginx_site, dict(PROXY, name="other"))
    assert not failed and warnings == []
    failed, result = run_module(monkeypatch, nginx_site, PROXY)
    assert not failed and result["reloaded"]
    assert 'nginx: [warn] conflicting server name "app.test" on 0.0.0.0:80, ignored' in warnings, warnings


def test_a_failing_reload_fails_with_systemctl_output(monkeypatch, host):
    """The files passed nginx -t and stay; the module reports the reload's failure."""
    host.reload_rc = 1
    failed, result = run_module(monkeypatch, nginx_site, PROXY)
    assert failed and result["rc"] == 1 and "reload nginx.service failed" in result["msg"]
    assert result["stderr"] == "Job for nginx.service failed.\n"
    assert listing(host) == ["app.conf", "app.conf"]
    assert host.verbs()[-1] == "systemctl reload nginx.service"
    assert not any("restart" in verb or " start" in verb for verb in host.verbs())


def test_no_system_manager_means_no_reload_and_a_warning(monkeypatch, host):
    """systemctl is-active prints nothing when no manager answers: not reloaded, said so, not failed."""
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    real = host.run_command

    def offline(module, args, **kwargs):
        if os.path.basename(args[0]) == "systemctl":
            host.calls.append(list(args))
            return 1, "", "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
        return real(module, args, **kwargs)

    monkeypatch.setattr(host, "run_command", offline)
    failed, result = run_module(monkeypatch, nginx_site, PROXY)
    assert not failed and result["changed"] and not result["reloaded"]
    assert warnings and warnings[0].startswith("cannot tell whether nginx.service runs")
    assert "systemctl reload nginx.service" not in host.verbs()


def test_listen_default_is_the_collections_constant():
    from ansible_collections.selfhost.pi.plugins.module_utils.constants import NGINX_LISTEN
    assert nginx_utils.site_argument_spec()["listen"]["default"] == list(NGINX_LISTEN) == ["80", "[::]:80"]


def test_nginx_errors_drop_log_prefix():
    text = ('2026/11/22 02:23:48 [emerg] 849#849: unknown directive "x" in /etc/nginx/sites-enabled/a.conf:21\n'
            "nginx: configuration file /etc/nginx/nginx.conf test failed\n")
    assert nginx_utils.nginx_errors(text) == ('nginx: [emerg] unknown directive "x" in /etc/nginx/sites-enabled/a.conf:21;'
                                              " nginx: configuration file /etc/nginx/nginx.conf test failed")


# -- HTTPS (issue 8) ------------------------------------------------------------
def make_certificate(directory, name):
    """A self-signed certificate and key made by the real openssl, for nginx -t to load."""
    import shutil
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed here")
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=" + name, "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def test_tls_site_has_a_redirecting_http_server_and_passes_nginx_t(monkeypatch, host, tmp_path):
    cert, key = make_certificate(str(tmp_path), "app.test")
    failed, result = run_module(monkeypatch, nginx_site, dict(PROXY, certificate=cert, certificate_key=key,
                                         acme_challenge_root="/var/lib/selfhost-pi/acme"))
    assert not failed and result["changed"] and result["tls"], result
    content = result["content"]
    http, https = content.split("\n\nserver {\n")
    assert "listen 80;" in http and "return 301 https://$host$request_uri;" in http
    assert "location ^~ /.well-known/acme-challenge/ {\n        root /var/lib/selfhost-pi/acme;" in http
    assert "proxy_pass" not in http
    assert "    listen 443 ssl;\n    listen [::]:443 ssl;\n" in https
    assert "ssl_certificate %s;" % cert in https and "ssl_certificate_key %s;" % key in https
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in https and "ssl_stapling" not in content
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in https
    assert "proxy_pass http://127.0.0.1:8080;" in https
    assert "nginx -t" in host.verbs() and "systemctl reload nginx.service" in host.verbs()


def test_a_missing_certificate_keeps_the_site_on_http_with_a_warning(monkeypatch, host, tmp_path):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    missing = str(tmp_path / "live" / "app.test")
    failed, result = run_module(monkeypatch, nginx_site, dict(PROXY, certificate=missing + "/fullchain.pem",
                                         certificate_key=missing + "/privkey.pem",
                                         acme_challenge_root="/var/lib/selfhost-pi/acme"))
    assert result["changed"] and not result["tls"], result
    assert "ssl_certificate" not in result["content"] and "listen 443" not in result["content"]
    assert "location ^~ /.well-known/acme-challenge/" in result["content"]
    assert "proxy_pass http://127.0.0.1:8080;" in result["content"]
    assert any("does not exist (yet)" in w for w in warnings), warnings


def test_plain_http_sites_render_as_before():
    params = dict((key, opt.get("default")) for key, opt in nginx_utils.site_argument_spec().items())
    params.update(PROXY)
    assert nginx_utils.render_site(params) == (
        "# Managed by selfhost.pi.nginx_site; local edits are overwritten.\n"
        "server {\n    listen 80;\n    listen [::]:80;\n    server_name app.test;\n\n"
        "    client_max_body_size 10m;\n\n    proxy_http_version 1.1;\n"
        "    proxy_set_header Host $host;\n    proxy_set_header X-Real-IP $remote_addr;\n"
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "    proxy_set_header X-Forwarded-Proto $scheme;\n    proxy_set_header X-Forwarded-Host $host;\n"
        "    proxy_connect_timeout 5s;\n    proxy_read_timeout 60s;\n    proxy_send_timeout 60s;\n\n"
        "    location / {\n        proxy_pass http://127.0.0.1:8080;\n    }\n}\n")


def test_basic_auth_hsts_preload_and_the_ca_file_pass_nginx_t(monkeypatch, host, tmp_path):
    cert, key = make_certificate(str(tmp_path), "blog.test")
    users = tmp_path / "htpasswd"
    users.write_text("alice:$6$saltsalt$abc\n")
    failed, result = run_module(monkeypatch, nginx_site, dict(STATIC, certificate=cert, certificate_key=key, redirect=False,
                                         hsts_max_age=63072000, hsts_preload=True, ca_certificate=cert,
                                         acme_challenge_root="/var/lib/selfhost-pi/acme",
                                         auth_basic_user_file=str(users), auth_basic_realm="Family only"))
    assert not failed, result
    content = result["content"]
    assert 'max-age=63072000; includeSubDomains; preload" always;' in content
    assert content.count('auth_basic "Family only";') == 2  # both servers: redirect=false serves HTTP too
    assert content.count("auth_basic off;") == 3  # challenge and CA file on HTTP, CA file on HTTPS
    assert "location = /.well-known/selfhost-pi-ca.crt {\n        alias %s;" % cert in content


@pytest.mark.parametrize("params,message", [
    (dict(certificate="/etc/x.pem"), "certificate, certificate_key: set both or neither"),
    (dict(certificate="x.pem", certificate_key="/k"), "certificate: 'x.pem' must be an absolute path"),
    (dict(certificate="/c", certificate_key="/k", https_listen=["443"]), "https_listen[0]: '443' is not an nginx"),
    (dict(hsts_max_age=-1), "hsts_max_age: -1 must be 0"),
    (dict(hsts_preload=True, hsts_max_age=300), "hsts_preload: the preload list wants hsts_max_age"),
    (dict(auth_basic_user_file="/u", auth_basic_realm='say "hi"'), "auth_basic_realm:"),
    (dict(acme_challenge_root="/srv/acme root"), "acme_challenge_root: '/srv/acme root' must not contain"),
])
def test_bad_tls_options_name_the_field(params, message):
    full = dict((key, opt.get("default")) for key, opt in nginx_utils.site_argument_spec().items())
    full.update(PROXY)
    full.update(params)
    errors = nginx_utils.validate_site(full)
    assert len(errors) == 1 and errors[0].startswith(message), errors
