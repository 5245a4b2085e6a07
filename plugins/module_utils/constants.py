# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One home for the collection's paths, defaults and exit codes.

Modules and module_utils import them from here. The host programs
(``selfhost-backup``, ``selfhost-update``, ``selfhost-blog-build``) get the
ones they need from their JSON config, written by the roles from these same
values, so nothing is hard-coded twice.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# -- the collection's own places on the host ----------------------------------
ETC_DIR = "/etc/selfhost-pi"
STATE_DIR = "/var/lib/selfhost-pi"
REQUEST_DIR = STATE_DIR + "/requests"          # webhook spool: one directory per hook ID
UPDATES_CONFIG_DIR = ETC_DIR + "/updates"
UPDATES_STATE_DIR = STATE_DIR + "/updates"
BACKUP_STAGING_DIR = STATE_DIR + "/backup/sqlite"
RESTORE_WORK_DIR = STATE_DIR + "/restore"
MANAGED_RECORD = STATE_DIR + "/managed.json"   # what the services module manages, and the retired UIDs
SELFHOST_BACKUP = "/usr/local/sbin/selfhost-backup"   # installed by the backup role
RESTIC_DIR = ETC_DIR + "/restic"                # 0700 root: password and repository settings
LIBEXEC_DIR = "/usr/local/libexec/selfhost-pi"
PYTHON_LIB_DIR = "/usr/local/lib/selfhost-pi/python"

# -- services -----------------------------------------------------------------
MIN_SERVICE_UID = 1000          # below: system accounts (Debian policy 9.2.2), never a service's
MAX_SERVICE_UID = 65533
USER_BUS_PATH = "/run/user/%d/bus"             # a user manager is reachable once this exists
VOLUMES_SUBDIR = ".local/share/containers/storage/volumes"
NGINX_LISTEN = ("80", "[::]:80")                # default listen values of a site

# Never the data or the home of one service: restoring, setting aside or
# removing them would break the host.
PROTECTED_PATHS = frozenset(
    "/ /bin /boot /dev /etc /home /lib /lib64 /media /mnt /nonexistent /opt /proc /root /run /sbin /srv /sys "
    "/tmp /usr /var /var/lib /var/log /var/tmp".split())

# -- SQLite and restic ---------------------------------------------------------
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
RESTIC_RC_NO_REPOSITORY = 10    # restic 0.17+: the repository does not exist
RESTIC_RC_WRONG_PASSWORD = 12   # restic 0.17+: the password does not open it
RC_TIMEOUT = 124                # timeout(1): the command did not end in time
SERVICE_TAG_PREFIX = "service:"         # a service's snapshots: tag service:NAME
HOST_STATE_TAG_PREFIX = "host-state:"   # the host's own state (certificates, the CA): tag host-state:NAME

# -- Quadlet (podman-systemd.unit(5)) -------------------------------------------
QUADLET_SYSTEM_DIR = "/etc/containers/systemd"          # rootful units
QUADLET_USER_SUBDIR = ".config/containers/systemd"      # rootless units, below the user's home
QUADLET_GENERATOR = "/usr/libexec/podman/quadlet"      # podman >= 4.4
SYSTEMD_USER_SUBDIR = ".config/systemd/user"            # a user's own plain units (the jobs' timers)

# -- the backup program (roles/backup writes these into its config) -----------
BACKUP_CONFIG = ETC_DIR + "/backup.json"        # the one path selfhost-backup knows by heart
BACKUP_COPY_TMP_DIR = "/var/tmp"                # the service user's private copy of a database, on disk
RESTIC_WRAPPER = "/usr/local/sbin/selfhost-restic"  # restic with the host's repository and password files
EX_NOINPUT = 66                 # sysexits.h: the copy step found no database there

# -- HTTPS (issue 8) -----------------------------------------------------------
TLS_MODES = ("acme", "acme-dns", "internal", "off")
HTTPS_LISTEN = ("443 ssl", "[::]:443 ssl")      # listen values of a site's TLS server
HSTS_MAX_AGE = 31536000                         # one year, in seconds (Strict-Transport-Security max-age)
LETSENCRYPT_DIR = "/etc/letsencrypt"            # certbot's own layout: live/NAME/{fullchain,privkey}.pem
ACME_WEBROOT = STATE_DIR + "/acme"              # certbot --webroot-path; nginx serves its .well-known/acme-challenge/
ACME_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
ACME_STAGING_DIRECTORY = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACME_DNS_CREDENTIALS = ETC_DIR + "/acme/rfc2136.ini"   # 0600 root: the TSIG secret for certbot-dns-rfc2136
CA_DIR = ETC_DIR + "/ca"                        # the internal CA: ca.key (0600), ca.crt
INTERNAL_TLS_DIR = ETC_DIR + "/tls"             # internal certificates: NAME/{fullchain,privkey}.pem
HTPASSWD_DIR = "/etc/nginx/selfhost-htpasswd"    # basic auth: one htpasswd file per site, 0640 root:www-data
