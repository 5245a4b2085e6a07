"""The declaration's digest (plugins/action/drift.py), on real files in a temporary directory."""
import os

from ansible_collections.selfhost.pi.plugins.action import drift


def collection(tmp_path):
    root = tmp_path / "collection"
    (root / "roles" / "web" / "meta").mkdir(parents=True)
    (root / "roles" / "web" / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n      web_port: {type: int}\n"
        "  extra:\n    options:\n      web_name: {type: str}\n")
    (root / "plugins").mkdir()
    (root / "plugins" / "x.py").write_text("x = 1\n")
    return str(root)


def test_the_variables_are_every_roles_options():
    names = drift.role_variables()
    assert {"service_specs", "blog_source", "nginx_server_tokens", "drift_check"} <= set(names)


def test_the_options_of_every_entry_point_count(tmp_path):
    assert drift.role_variables(collection(tmp_path)) == ["web_name", "web_port"]


def test_the_digest_follows_values_named_files_and_the_collection(tmp_path):
    root = collection(tmp_path)
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"layer-1")
    site = tmp_path / "site"
    (site / "content").mkdir(parents=True)
    (site / "content" / "post.md").write_text("hello\n")
    values = {"service_specs": [{"name": "web", "containers": [{"image_archive": str(archive)}]}],
              "blog_source": str(site)}
    first = drift.declaration(values, root)
    assert drift.declaration(values, root) == first
    assert drift.declaration(dict(values, web_port=8080), root) != first

    archive.write_bytes(b"layer-2")
    os.utime(str(archive), ns=(1, 1))
    second = drift.declaration(values, root)
    assert second != first

    (site / "public").mkdir()
    (site / "public" / "index.html").write_text("built locally\n")  # the bundle leaves it out too
    assert drift.declaration(values, root) == second
    (site / "content" / "post.md").write_text("hello again\n")
    third = drift.declaration(values, root)
    assert third != second

    (tmp_path / "collection" / "plugins" / "x.py").write_text("x = 2\n")
    assert drift.declaration(values, root) != third


def test_archives_are_found_at_any_depth():
    value = {"a": [{"image_archive": "/one"}, {"containers": [{"image_archive": "/two"}]}], "image_archive": 3}
    assert sorted(drift.archives(value)) == ["/one", "/two"]
