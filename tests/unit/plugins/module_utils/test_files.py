import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, ensure_directory


class FakeModule:
    def fail_json(self, msg, **kwargs):
        raise RuntimeError(msg)


def test_new_file_is_written_with_mode(tmp_path):
    path = str(tmp_path / "a.conf")
    mf = ManagedFile(path, "x=1\n", mode=0o600)
    assert mf.changed and mf.before is None
    assert mf.diff()["before_header"].endswith("(absent)")
    assert mf.apply(FakeModule())
    assert open(path).read() == "x=1\n"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert not ManagedFile(path, "x=1\n", mode=0o600).changed


def test_mode_only_change(tmp_path):
    path = tmp_path / "a.conf"
    path.write_text("x\n")
    os.chmod(path, 0o644)
    mf = ManagedFile(str(path), "x\n", mode=0o640)
    assert mf.changed and not mf.content_changed
    assert mf.apply(FakeModule())
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_failed_validation_keeps_working_file(tmp_path):
    path = tmp_path / "a.conf"
    path.write_text("good\n")
    mf = ManagedFile(str(path), "bad\n")
    with pytest.raises(RuntimeError, match="nope"):
        mf.apply(FakeModule(), validate=lambda tmp: "nope")
    assert path.read_text() == "good\n"
    assert os.listdir(tmp_path) == ["a.conf"]


def test_ensure_directory_check_mode_changes_nothing(tmp_path):
    target = str(tmp_path / "a" / "b")
    assert ensure_directory(target, 0o700, check_mode=True)
    assert not os.path.exists(target)
    assert ensure_directory(target, 0o700)
    assert os.stat(target).st_mode & 0o777 == 0o700
    assert not ensure_directory(target, 0o700)
