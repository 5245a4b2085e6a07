"""Quadlet unit text: rendering, escaping and names (module_utils/quadlet_render.py)."""
import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import quadlet_render
from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError


# ------------------------------------------------------------ render

def test_render_orders_sections_and_keeps_key_order():
    text = quadlet_render.render(
        "container",
        unit={"Description": "web", "After": ["a.service", "b.service"]},
        options={"Image": "img", "ReadOnly": True, "PublishPort": ["80:80", 8443], "Environment": {"A": "1"}},
        service={"Restart": "always", "TimeoutStartSec": 300},
        install={"WantedBy": "default.target"},
        header="",
    )
    assert text == (
        "[Unit]\nDescription=web\nAfter=a.service\nAfter=b.service\n\n"
        "[Container]\nImage=img\nReadOnly=true\nPublishPort=80:80\nPublishPort=8443\nEnvironment=A=1\n\n"
        "[Service]\nRestart=always\nTimeoutStartSec=300\n\n"
        "[Install]\nWantedBy=default.target\n"
    )
    # Same input, same bytes: idempotency depends on it.
    assert text == quadlet_render.render("container", {"Description": "web", "After": ["a.service", "b.service"]},
                                  {"Image": "img", "ReadOnly": True, "PublishPort": ["80:80", 8443],
                                   "Environment": {"A": "1"}},
                                  {"Restart": "always", "TimeoutStartSec": 300},
                                  {"WantedBy": "default.target"}, header="")


def test_render_type_section_always_present_other_empty_sections_left_out():
    assert quadlet_render.render("volume", header="") == "[Volume]\n"
    assert quadlet_render.render("network", options={"Subnet": "10.0.0.0/24"}).startswith(quadlet_render.HEADER + "[Network]\n")


def test_render_quotes_dict_items_only_when_needed_and_skips_nulls():
    text = quadlet_render.render("container", options={
        "Label": {"a": "b", "note": "two words", "q": 'say "hi"', "gone": None},
        "Volume": [], "Exec": None, "Annotation": {"x": False}}, header="")
    assert text == ('[Container]\nLabel=a=b\nLabel="note=two words"\nLabel="q=say \\"hi\\""\n'
                    "Annotation=x=false\n")


@pytest.mark.parametrize("section, value, message", [
    ("options", {"PublishPort": ["1:1", "2:2\nExec=x"]}, "options.PublishPort[1]: value contains a newline"),
    ("options", {"Image": "a\r"}, "options.Image: value contains a newline"),
    ("service", {"ExecStartPre": "echo \\"}, "service.ExecStartPre: value ends with a backslash"),
    ("unit", {"bad-key": 1}, "unit.bad-key: invalid key"),
    ("install", {"1Wanted": 1}, "install.1Wanted: invalid key"),
    ("options", {"Environment": {"A": [1]}}, "options.Environment.A: expected a string, number or boolean"),
    ("options", {"Environment": {"A B": "x"}}, "options.Environment.A B: the name must be"),
    ("options", {"Volume": [{"a": 1}]}, "options.Volume[0]: expected a string"),
])
def test_render_rejects_bad_values_naming_the_field(section, value, message):
    with pytest.raises(ValidationError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        quadlet_render.render("container", **{section: value})


def test_check_name():
    quadlet_render.check_name("web@.x_1-a", "container")
    for bad in ("", "-x", "a/b", "a b", "../x"):
        with pytest.raises(ValidationError, match="^name: "):
            quadlet_render.check_name(bad, "container")
    with pytest.raises(ValidationError, match="without the .pod suffix"):
        quadlet_render.check_name("web.pod", "pod")


# ------------------------------------------------------------ naming

@pytest.mark.parametrize("unit_type, service", [
    ("container", "web.service"), ("kube", "web.service"), ("pod", "web-pod.service"),
    ("volume", "web-volume.service"), ("network", "web-network.service"),
    ("image", "web-image.service"), ("build", "web-build.service"),
])
def test_service_name(unit_type, service):
    assert quadlet_render.service_name("web", unit_type, {}) == service
    assert quadlet_render.service_name("web", unit_type, {"ServiceName": "custom"}) == "custom.service"


def test_service_name_from_installed_content():
    content = "[Unit]\nServiceName=no\n[Pod]\nServiceName=mypod\n"
    assert quadlet_render.service_name_from_content("app", "pod", content) == "mypod.service"
    assert quadlet_render.service_name_from_content("app", "pod", None) == "app-pod.service"
