# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dpkg-query's list of installed packages in the shape of ansible_facts.packages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: dpkg_packages
author: selfhost.pi contributors
version_added: 0.2.0
short_description: The installed packages from dpkg-query's output, shaped like ansible_facts.packages
description:
  - Parses the output of
    C(dpkg-query -W -f '${Package} ${Version} ${Architecture} ${db:Status-Status}\n') (dpkg-query(1), C(--showformat))
    into a dict from package name to a list of C({name, version, arch, source}) dicts, the shape
    C(ansible.builtin.package_facts) gives with C(manager=apt).
  - The base role reads packages this way when package_facts cannot (a freshly flashed host has no python3-apt).
  - Only packages whose status is C(installed) are kept (removed packages whose configuration files remain are not).
  - Fails on a line that does not have four fields separated by white space (no field holds a space).
options:
  _input:
    description: dpkg-query's standard output.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Remember the installed packages as ansible_facts.packages
  ansible.builtin.set_fact:
    packages: "{{ dpkg_query.stdout | selfhost.pi.dpkg_packages }}"
    cacheable: true
"""

RETURN = r"""
_value:
  description: Package name to the list of its installed versions (one per architecture).
  type: dict
"""


def dpkg_packages(text):
    packages = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(" ")  # an empty field (no Architecture) stays a field
        if len(fields) != 4:
            raise AnsibleFilterError("dpkg_packages: line %d is not NAME VERSION ARCH STATUS: %r" % (number, line))
        name, version, arch, status = fields
        if status.strip() != "installed":
            continue
        packages.setdefault(name, []).append({"name": name, "version": version, "arch": arch, "source": "apt"})
    return packages


class FilterModule(object):
    def filters(self):
        return {"dpkg_packages": dpkg_packages}
