# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: archive_on_host
author: selfhost.pi maintainers (@selfhost)
version_added: 0.1.0
short_description: Where an image archive from the controller is kept on the host
description:
  - Given a controller path of an image archive, returns its path on the host, C(DIR/HASH-BASENAME), where C(HASH)
    is the first 12 hex digits of the SHA-1 of the controller path. Distinct archives never share a name, and the
    same archive used by several services is copied once.
  - Given a service spec (a dict), returns the spec with its C(image_archive) replaced that way, and those of its
    pod's C(containers); a spec without any C(image_archive) is returned unchanged.
options:
  _input:
    description: A controller path, or a service spec.
    type: raw
    required: true
  directory:
    description: Directory on the host that holds the archives.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Copy the archive
  ansible.builtin.copy:
    src: files/hello.tar
    dest: "{{ 'files/hello.tar' | selfhost.pi.archive_on_host('/var/lib/selfhost-pi') }}"
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The host path, or the spec with the host path.
  type: raw
"""

import hashlib
import posixpath

from ansible.module_utils.common.text.converters import to_bytes


def archive_on_host(value, directory):
    if isinstance(value, dict):
        members = value.get("containers") or []
        if not value.get("image_archive") and not any(isinstance(m, dict) and m.get("image_archive")
                                                      for m in members):
            return value
        spec = dict(value)
        if value.get("image_archive"):
            spec["image_archive"] = archive_on_host(value["image_archive"], directory)
        if members:
            spec["containers"] = [archive_on_host(m, directory) if isinstance(m, dict) else m for m in members]
        return spec
    path = str(value)
    prefix = hashlib.sha1(to_bytes(path)).hexdigest()[:12]
    return posixpath.join(directory, "%s-%s" % (prefix, posixpath.basename(path)))


class FilterModule(object):
    def filters(self):
        return {"archive_on_host": archive_on_host}
