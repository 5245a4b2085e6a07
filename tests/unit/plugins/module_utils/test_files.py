import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, ensure_directory


def test_new_file_is_written_with_mode(tmp_path):
    path = str(tmp_path / "a.conf")
    mf = ManagedFile(path, "x=1\n", mode=0o600)
    assert mf.changed and mf.before is None
    assert mf.diff()["before_header"].endswith("(absent)")
    assert mf.apply()
    assert open(path).read() == "x=1\n"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert not ManagedFile(path, "x=1\n", mode=0o600).changed


def test_mode_only_change(tmp_path):
    path = tmp_path / "a.conf"
    path.write_text("x\n")
    os.chmod(path, 0o644)
    mf = ManagedFile(str(path), "x\n", mode=0o640)
    assert mf.changed and not mf.content_changed
    assert mf.apply()
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_failed_validation_keeps_working_file(tmp_path):
    path = tmp_path / "a.conf"
    path.write_text("good\n")
    mf = ManagedFile(str(path), "bad\n")
    with pytest.raises(ValidationError, match="nope"):
        mf.apply(validate=lambda tmp: "nope")
    assert path.read_text() == "good\n"
    assert os.listdir(tmp_path) == ["a.conf"]


def test_ensure_directory_check_mode_changes_nothing(tmp_path):
    target = str(tmp_path / "a" / "b")
    assert ensure_directory(target, 0o700, check_mode=True)
    assert not os.path.exists(target)
    assert ensure_directory(target, 0o700)
    assert os.stat(target).st_mode & 0o777 == 0o700
    assert not ensure_directory(target, 0o700)


def test_symlink_in_place_of_a_file_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    os.chmod(victim, 0o600)
    link = tmp_path / "a.conf"
    os.symlink(victim, link)
    mf = ManagedFile(str(link), "keep\n", mode=0o644)
    assert mf.changed
    assert mf.apply()
    assert not os.path.islink(link) and link.read_text() == "keep\n"
    assert os.stat(victim).st_mode & 0o777 == 0o600


def test_ensure_directory_refuses_a_symlink(tmp_path):
    target = tmp_path / "real"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    os.symlink(target, link)
    with pytest.raises(OSError):
        ensure_directory(str(link), 0o755)
    assert os.stat(target).st_mode & 0o777 == 0o700


def test_a_symlinked_parent_is_refused(tmp_path):
    elsewhere = tmp_path / "etc"
    (elsewhere / "containers").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(elsewhere, home / ".config")
    with pytest.raises(OSError, match="symlink"):
        ensure_directory(str(home / ".config" / "containers"), 0o755)
    with pytest.raises(OSError, match="symlink"):
        ManagedFile(str(home / ".config" / "containers" / "a.container"), "x\n").apply()
    assert os.listdir(elsewhere / "containers") == []


def test_read_text_does_not_follow_symlinks(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:hash\n")
    os.symlink(secret, tmp_path / "unit")
    from ansible_collections.selfhost.pi.plugins.module_utils.files import read_text
    assert read_text(str(tmp_path / "unit")) is None
