"""module_utils/nginx.py: raw directives are checked the way nginx reads them; the real nginx -t agrees."""
import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import nginx as nginx_utils

from ..nginx_t import check_site

ESCAPE = "add_header X-A a#; } server { listen 127.0.0.1:8081; server_name evil.test;"


def params(**kwargs):
    result = dict((k, v.get("default")) for k, v in nginx_utils.site_argument_spec().items())
    result.update(name="app", server_name=["app.test"], proxy_pass="http://127.0.0.1:8080")
    result.update(kwargs)
    return result


def test_the_hash_escape_is_real_for_nginx_and_refused(tmp_path):
    """nginx accepts the rendered file: the entry closes our server block and opens its own.

    Only validate_site stands between such an entry and a second server; the
    old brace check read "#;" as the start of a comment and let it through.
    """
    site = params(directives=[ESCAPE])
    rc, err = check_site(str(tmp_path), "app", nginx_utils.render_site(site))
    assert rc == 0, err
    errors = nginx_utils.validate_site(site)
    assert len(errors) == 1 and errors[0].startswith("directives[0]: ") and "would close the block" in errors[0]


@pytest.mark.parametrize("directive", [
    "add_header X-A a#b;",
    'add_header X-A "a } { ; #";',
    "add_header X-A 'it\\'s';",
    "add_header X-A a\\;b;",
    "gzip on; # a comment with } and {",
    "location ~* \\.(css|js)$ {\n    expires 7d;\n}",
    "location /a { location /a/b { return 204; } }",
])
def test_entries_the_check_accepts_pass_nginx_t(tmp_path, directive):
    site = params(directives=[directive])
    assert nginx_utils.validate_site(site) == []
    rc, err = check_site(str(tmp_path), "app", nginx_utils.render_site(site))
    assert rc == 0, err


def test_a_variable_upstream_is_accepted_by_nginx_and_refused(tmp_path):
    """nginx takes http://127.0.0.1:$http_x_port (the port comes from a request header) at face value."""
    site = params(proxy_pass="http://127.0.0.1:$http_x_port")
    rc, err = check_site(str(tmp_path), "app", nginx_utils.render_site(site))
    assert rc == 0, err
    assert [e.split(":")[0] for e in nginx_utils.validate_site(site)] == ["proxy_pass"]


def test_services_refuse_a_variable_upstream_naming_the_field(monkeypatch):
    """The services module checks a spec's upstream as the site's proxy_pass, before anything on the host."""
    from ansible_collections.selfhost.pi.plugins.modules import services

    from ..modules.helpers import run_module

    spec = {"name": "web", "uid": 2001, "image": "localhost/web:1", "publish_ports": ["127.0.0.1:8001:80"],
            "domain": "web.test", "upstream": "http://127.0.0.1:$http_x_port"}
    failed, result = run_module(monkeypatch, services, {"services": [spec]})
    assert failed and result["msg"].startswith("nothing was changed: services[0].upstream: "), result["msg"]
