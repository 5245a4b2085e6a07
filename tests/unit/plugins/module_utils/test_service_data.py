"""service_data: how a spec's data resolves to absolute paths, and when a host holds it."""
import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import service_data

VOLUMES = "/home/notes/.local/share/containers/storage/volumes"


def spec(**data):
    return {"name": "notes", "uid": 2201, "data": data}


def test_relative_paths_are_under_the_home_and_absolute_ones_kept():
    result = service_data.normalize(spec(paths=["data", "./conf/../etc/app.ini", "/srv/notes/media"]))
    assert result["name"] == "notes" and result["uid"] == 2201 and result["home"] == "/home/notes"
    assert result["paths"] == ["/home/notes/data", "/home/notes/etc/app.ini", "/srv/notes/media"]
    assert result["sqlite"] == [] and result["pre_backup"] == []


def test_volumes_become_their_mount_points_after_the_paths():
    result = service_data.normalize(spec(volumes=["pgdata"], paths=["data"]))
    assert result["paths"] == ["/home/notes/data", VOLUMES + "/pgdata/_data"]


def test_sqlite_and_pre_backup():
    result = service_data.normalize(spec(sqlite=["data/notes.db", "/var/lib/notes/x.db"],
                                         pre_backup=["notes dump > data/dump.sql"]))
    assert result["sqlite"] == ["/home/notes/data/notes.db", "/var/lib/notes/x.db"]
    assert result["pre_backup"] == ["notes dump > data/dump.sql"]


def test_duplicate_paths_are_kept_once_in_order():
    result = service_data.normalize(spec(paths=["data", "/home/notes/data/", "b", "data/."],
                                         volumes=["v"], sqlite=[]))
    assert result["paths"] == ["/home/notes/data", "/home/notes/b", VOLUMES + "/v/_data"]
    # A path written out to a volume's mount point and the volume itself are one path.
    both = service_data.normalize(spec(paths=[".local/share/containers/storage/volumes/v/_data"], volumes=["v"]))
    assert both["paths"] == [VOLUMES + "/v/_data"]


def test_no_data_and_string_uid():
    result = service_data.normalize({"name": "web", "uid": "2001"})
    assert result == dict(name="web", uid=2001, home="/home/web", paths=[], sqlite=[], pre_backup=[])
    assert not service_data.declares_data({"name": "web", "uid": 1})
    assert not service_data.declares_data(spec(pre_backup=["true"]))
    assert service_data.declares_data(spec(volumes=["v"]))
    assert service_data.declares_data(spec(sqlite=["a.db"]))


@pytest.mark.parametrize("data,message", [
    (dict(paths=["data", ""]), "data.paths[1]: '' is not a path"),
    (dict(paths=["a\nb"]), "data.paths[0]: 'a\\nb' is not a path"),
    (dict(paths=["a\x00b"]), "data.paths[0]: 'a\\x00b' is not a path"),
    (dict(paths=["ok", "/etc"]), "data.paths[1]: /etc is not a path of one service's data"),
    (dict(paths=["/var/lib/"]), "data.paths[0]: /var/lib is not a path of one service's data"),
    (dict(paths=["../.."]), "data.paths[0]: / is not a path of one service's data"),
    (dict(paths=["."]), "data.paths[0]: /home/notes is not a path of one service's data"),
    (dict(paths=["data/.."]), "data.paths[0]: /home/notes is not a path of one service's data"),
    (dict(paths=["/var/lib/selfhost-pi/backup/sqlite/notes"]),
     "data.paths[0]: /var/lib/selfhost-pi/backup/sqlite/notes is inside the backup staging directory"),
    (dict(paths=["/var/lib/selfhost-pi/backup/sqlite"]), "is inside the backup staging directory"),
    (dict(volumes=["ok", "a/b"]), "data.volumes[1]: 'a/b' is not a podman volume name"),
    (dict(volumes=["..", "x"]), "data.volumes[0]: '..' is not a podman volume name"),
    (dict(volumes=["-v"]), "data.volumes[0]: '-v' is not a podman volume name"),
    (dict(volumes=[""]), "data.volumes[0]: '' is not a podman volume name"),
    (dict(sqlite=["a.db", "/usr"]), "data.sqlite[1]: /usr is not a path of one service's data"),
    (dict(sqlite=[""]), "data.sqlite[0]: '' is not a path"),
    (dict(pre_backup=["true", "  "]), "data.pre_backup[1]: empty command"),
    (dict(paths=["/home/notes"]), "data.paths[0]: /home/notes is not a path of one service's data"),
    (dict(paths=["../web/data"]), "data.paths[0]: '../web/data' leaves the service's home"),
    (dict(paths=["/home/web/data"]), "data.paths[0]: /home/web/data is in another user's home"),
    (dict(sqlite=["data/"]), "data.sqlite[0]: data/ is a directory, not a database file"),
    (dict(sqlite=["v:/abs.db"]), "data.sqlite[0]: 'v:/abs.db' is not VOLUME:PATH with a relative PATH"),
    (dict(paths=["data", "data/media"]),
     "data.paths[1]: /home/notes/data/media is inside data.paths[0] (/home/notes/data); declare only the outer one"),
    (dict(paths=[".local"], volumes=["v"]), "data.volumes[0]: %s/v/_data is inside data.paths[0]" % VOLUMES),
])
def test_each_error_names_its_field(data, message):
    with pytest.raises(ValueError) as info:
        service_data.normalize(spec(**data))
    assert message in str(info.value)
    assert str(info.value).startswith("data.")


def test_field_prefix_is_the_callers():
    with pytest.raises(ValueError, match=r"^service_specs\[3\]\.data\.paths\[0\]: /etc "):
        service_data.normalize(spec(paths=["/etc"]), "service_specs[3].data")


def test_staged_path():
    assert service_data.staged_path("notes", "/home/notes/data/notes.db") == \
        "/var/lib/selfhost-pi/backup/sqlite/notes/home/notes/data/notes.db"


def test_present(tmp_path):
    assert not service_data.present(str(tmp_path / "absent"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not service_data.present(str(empty))
    (empty / ".hidden").write_text("")
    assert service_data.present(str(empty))
    file = tmp_path / "file"
    file.write_text("")  # an empty file is data too
    assert service_data.present(str(file))
    dangling = tmp_path / "link"
    os.symlink(str(tmp_path / "nowhere"), str(dangling))
    assert service_data.present(str(dangling))


def test_has_data(tmp_path):
    (tmp_path / "empty").mkdir()
    service = dict(paths=[str(tmp_path / "empty"), str(tmp_path / "absent")], sqlite=[str(tmp_path / "x.db")])
    assert not service_data.has_data(service)
    (tmp_path / "x.db").write_bytes(b"SQLite format 3\x00")
    assert service_data.has_data(service)
    (tmp_path / "x.db").unlink()
    (tmp_path / "empty" / "f").write_text("1")
    assert service_data.has_data(service)


# -- open_dir / lstat: root reaches a service's paths without following its links ------------


def test_open_dir_refuses_a_link_in_a_directory_a_user_can_write(tmp_path):
    from ansible_collections.selfhost.pi.plugins.module_utils.errors import UnsafePathError
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    (elsewhere / "data").mkdir(parents=True)
    os.chmod(str(home), 0o777)  # writable by others, as a service user's tree is by that user
    os.symlink(str(elsewhere), str(home / "vol"))
    with pytest.raises(UnsafePathError) as info:
        service_data.open_dir(str(home / "vol" / "data"))
    assert str(info.value).startswith("%s is a symbolic link" % (home / "vol"))
    assert service_data.lstat(str(home / "vol")).st_mode & 0o170000 == 0o120000  # the link itself
    with pytest.raises(UnsafePathError):
        service_data.lstat(str(home / "vol" / "data"))
    (home / "file").write_text("")
    with pytest.raises(UnsafePathError) as info:
        service_data.open_dir(str(home / "file" / "x"))
    assert "file is not a directory" in str(info.value)
    assert service_data.lstat(str(home / "missing" / "x")) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="a directory only root can write needs root")
def test_open_dir_follows_a_link_only_root_could_have_made(tmp_path):
    root_only, target = tmp_path / "etc", tmp_path / "srv"
    (target / "notes").mkdir(parents=True)
    root_only.mkdir(mode=0o755)
    os.chmod(str(root_only), 0o755)
    os.symlink(str(target), str(root_only / "home"))  # /home -> /srv/home, the administrator's
    fd = service_data.open_dir(str(root_only / "home" / "notes"))
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(str(target / "notes")))
    finally:
        os.close(fd)
    from ansible_collections.selfhost.pi.plugins.module_utils.errors import UnsafePathError
    with pytest.raises(UnsafePathError):
        service_data.open_dir(str(root_only / "home" / "notes"), follow_root_links=False)


def test_open_dir_makes_missing_directories_with_make(tmp_path):
    made = []

    def make(parent_fd, name, path):
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        made.append(path)

    fd = service_data.open_dir(str(tmp_path / "a" / "b"), make=make)
    os.close(fd)
    assert made == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]
