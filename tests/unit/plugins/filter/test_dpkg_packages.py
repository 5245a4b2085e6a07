import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.pi.plugins.filter.dpkg_packages import FilterModule, dpkg_packages

FORMAT = "${Package} ${Version} ${Architecture} ${db:Status-Status}\\n"  # as roles/base/tasks/main.yml


def test_installed_packages_in_package_facts_shape():
    text = ("sudo 1.9.16p2-3 amd64 installed\n"
            "libc6 2.41-12 amd64 installed\n"
            "libc6 2.41-12 i386 installed\n"
            "nginx 1.26.3-3 all config-files\n"
            "\n")
    packages = dpkg_packages(text)
    assert sorted(packages) == ["libc6", "sudo"]
    assert packages["sudo"] == [{"name": "sudo", "version": "1.9.16p2-3", "arch": "amd64", "source": "apt"}]
    assert [p["arch"] for p in packages["libc6"]] == ["amd64", "i386"]


def test_empty_output_is_no_packages():
    assert dpkg_packages("") == {}
    assert dpkg_packages(None) == {}


def test_a_malformed_line_fails_naming_it():
    with pytest.raises(AnsibleFilterError, match="line 2"):
        dpkg_packages("sudo 1 amd64 installed\nbroken line\n")


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg-query")
def test_the_real_dpkg_query_output_parses():
    out = subprocess.run(["dpkg-query", "-W", "-f", FORMAT],
                         capture_output=True, text=True, check=True).stdout
    packages = dpkg_packages(out)
    assert "dpkg" in packages and packages["dpkg"][0]["version"]


def test_the_filter_is_registered():
    assert FilterModule().filters()["dpkg_packages"] is dpkg_packages
