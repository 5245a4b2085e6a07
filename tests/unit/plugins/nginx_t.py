"""The real ``nginx -t`` on a Debian-like layout in a temporary directory.

Tests that need nginx's verdict use this and skip, saying why, when nginx is
not installed (``make deps`` installs nginx-light). Nothing here starts nginx:
``-t`` only reads and checks the configuration.
"""
import os
import shutil
import subprocess

import pytest

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def require_nginx():
    if NGINX is None:
        pytest.skip("nginx is not installed here (apt-get install nginx-light); this test needs the real nginx -t")


def make_layout(conf_dir):
    """sites-available, sites-enabled and an nginx.conf that includes sites-enabled/* as Debian's does."""
    for sub in ("sites-available", "sites-enabled"):
        os.makedirs(os.path.join(conf_dir, sub), exist_ok=True)
    with open(os.path.join(conf_dir, "nginx.conf"), "w") as handle:
        handle.write("events {}\nhttp {\n    include %s/sites-enabled/*;\n}\n" % conf_dir)


def nginx_t_argv(conf_dir, nginx=None):
    """``nginx -t`` for the configuration in ``conf_dir``, logging to stderr instead of /var/log/nginx."""
    return [nginx or NGINX, "-t", "-p", conf_dir + "/", "-c", os.path.join(conf_dir, "nginx.conf"), "-e", "stderr"]


def nginx_t(conf_dir):
    """Run the real ``nginx -t`` on ``conf_dir``; return (rc, stdout, stderr)."""
    require_nginx()
    proc = subprocess.run(nginx_t_argv(conf_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    return proc.returncode, proc.stdout, proc.stderr


def check_site(conf_dir, name, content):
    """Enable one site with ``content`` and return nginx -t's (rc, stderr)."""
    make_layout(conf_dir)
    path = os.path.join(conf_dir, "sites-enabled", name + ".conf")
    with open(path, "w") as handle:
        handle.write(content)
    rc, dummy, err = nginx_t(conf_dir)
    return rc, err
