"""The tls and nginx roles name the places module_utils/constants.py names (one home for each path)."""
import os

import yaml

from ansible_collections.selfhost.pi.plugins.module_utils import constants, tls

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return yaml.safe_load(handle)


def test_the_tls_roles_paths_are_the_constants():
    values = load("roles", "tls", "vars", "main.yml")
    assert values["__tls_acme_webroot"] == constants.ACME_WEBROOT
    assert values["__tls_dns_credentials"] == constants.ACME_DNS_CREDENTIALS
    assert values["__tls_ca_dir"] == constants.CA_DIR
    assert values["__tls_internal_dir"] == constants.INTERNAL_TLS_DIR
    assert values["__tls_letsencrypt_dir"] == constants.LETSENCRYPT_DIR
    assert values["__tls_state_file"] == constants.TLS_STATE
    assert tls.CA_CERTIFICATE == constants.CA_DIR + "/ca.crt"


def test_the_default_servers_challenge_root_is_the_webroot():
    defaults = load("roles", "nginx", "defaults", "main.yml")
    assert "'%s' if acme_email is defined" % constants.ACME_WEBROOT in defaults["nginx_acme_webroot"]
    assert defaults["nginx_default_server_https_listen"] == list(constants.HTTPS_LISTEN)


def test_the_tls_role_defaults_are_the_constants():
    defaults = load("roles", "tls", "defaults", "main.yml")
    assert defaults["tls_hsts_max_age"] == constants.HSTS_MAX_AGE
    values = load("roles", "tls", "vars", "main.yml")
    assert constants.ACME_DIRECTORY in values["__tls_acme_directory"]
    assert constants.ACME_STAGING_DIRECTORY in values["__tls_acme_directory"]
