"""The real ``nginx -t`` on a Debian-like layout in a temporary directory.

Tests that need nginx's verdict use this and skip, saying why, when nginx is
not installed (``make deps`` installs it) or when they do not run as root.
Nothing here starts nginx, but ``nginx -t`` does bind() the sites' ports and
chown its temporary directories, as root only; so it runs in a network
namespace of its own (``unshare -n``) where one can be made, and the
machine's port 80 is never touched.
"""
import os
import shutil
import subprocess

import pytest

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


_ISOLATION = []


def require_nginx():
    if NGINX is None:
        pytest.skip("nginx is not installed here (apt-get install nginx); this test needs the real nginx -t")
    if os.geteuid() != 0:
        pytest.skip("nginx -t binds the sites' ports (80) and chowns its temporary directories: it needs root")


def isolation():
    """``unshare -n`` when it works here, else nothing (nginx -t then binds the ports for a moment)."""
    if not _ISOLATION:
        unshare = shutil.which("unshare")
        works = unshare and subprocess.run([unshare, "-n", "true"], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL).returncode == 0
        _ISOLATION.append([unshare, "-n"] if works else [])
    return _ISOLATION[0]


def make_layout(conf_dir):
    """sites-available, sites-enabled and an nginx.conf that includes sites-enabled/* as Debian's does.

    The pid file and the access log are in ``conf_dir`` too, so that nginx -t
    also runs for a user who cannot write /run and /var/log/nginx.
    """
    for sub in ("sites-available", "sites-enabled"):
        os.makedirs(os.path.join(conf_dir, sub), exist_ok=True)
    with open(os.path.join(conf_dir, "nginx.conf"), "w") as handle:
        handle.write("pid {0}/nginx.pid;\nevents {{}}\nhttp {{\n    access_log {0}/access.log;\n"
                     "    include {0}/sites-enabled/*;\n}}\n".format(conf_dir))


def nginx_t_argv(conf_dir, nginx=None):
    """``nginx -t`` for the configuration in ``conf_dir``, logging to stderr instead of /var/log/nginx."""
    return isolation() + [nginx or NGINX, "-t", "-p", conf_dir + "/", "-c", os.path.join(conf_dir, "nginx.conf"),
                          "-e", "stderr"]


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
