"""Quadlet unit text: rendering, escaping and names (module_utils/quadlet_render.py)."""
import os
import re
import shutil
import string
import subprocess

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
    text = quadlet_render.render("network", options={"Subnet": "10.0.0.0/24"})
    assert text.startswith(quadlet_render.HEADER + "[Network]\n")


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


# ------------------------------------------------------------ escaping (finding 6)
#
# The Quadlet generator is not on this Debian 12 machine (podman 4.3), so two small
# stand-ins follow podman's code (pkg/systemd/parser, v5.4.2): how it joins lines
# and how it writes an argument into the generated ExecStart=. What systemd then
# makes of that ExecStart= word is asked of the real systemd, with
# `systemd-analyze verify` (it names the command it could not find).

def quadlet_keys(text):
    """(section, key, value) of each line as Quadlet's parser reads it: every line is stripped, and a line
    ending in a backslash (whatever precedes it) is joined to the next one (unitfile.go, Parse)."""
    out, section, pending = [], None, ""
    lines = text.rstrip("\n").split("\n")
    for number, line in enumerate(lines):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\") and number != len(lines) - 1:
            pending += line[:-1]
            continue
        line, pending = pending + line, ""
        if line.startswith("["):
            section = line[1:line.index("]")]
        else:
            key, value = line.split("=", 1)
            out.append((section, key.strip(), value.strip()))
    return out


def exec_word(arg):
    """An argument as Quadlet writes it into ExecStart= (split.go, escapeWords): quoted when needed, with
    backslash and double quote escaped; '%' and '$' are left for systemd."""
    if arg and not re.search(r"[\s\x00-\x1f\"'\\]", arg):
        return arg
    return '"%s"' % arg.replace("\\", "\\\\").replace('"', '\\"')


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


def systemd_reads(tmp_path, word):
    """What systemd makes of ``word`` in an Exec line: unquoted, unescaped, specifiers resolved.

    (Variables, $VAR and ${VAR}, are expanded only when the command runs; nothing here shows that.)
    """
    unit = tmp_path / "probe.service"
    unit.write_text("[Service]\nExecStart=/nonexistent/%s\n" % word)
    proc = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, cwd=str(tmp_path),
                          env=dict(os.environ, SYSTEMD_LOG_COLOR="0"))
    found = re.search(r"(?:Command|special characters:) /nonexistent/(.*?)(?: is not executable:.*)?$",
                      proc.stdout, re.M)
    if found is None:
        raise AssertionError("systemd refused %r: %s" % (word, proc.stdout))
    return found.group(1)


def rendered(options=None, **sections):
    """The lines of a rendered .container (without header) as Quadlet reads them."""
    return quadlet_keys(quadlet_render.render("container", options=options or {}, header="", **sections))


@pytest.mark.parametrize("section, key, value", [
    ("service", "TimeoutStartSec", "300\\  "),       # backslash, then spaces: Quadlet strips, then joins
    ("service", "TimeoutStartSec", "300\\\u00a0"),      # a no-break space: stripped by both
    ("unit", "Description", "web \\"),
    ("options", "Exec", "/bin/app --flag \\  "),
    ("options", "PublishPort", ["8080:80", "1:1\\ "]),
    ("options", "Image", "img\\\\"),                  # an escaped backslash at the end: Quadlet joins it too
])
def test_a_value_ending_in_a_backslash_is_refused(section, key, value):
    """Finding 6: 'value\\  ' passed the old check (it ended with spaces) and Quadlet, which strips each line
    before it looks for the continuation backslash, joined the next directive to it."""
    field = "%s.%s%s" % (section, key, "[1]" if isinstance(value, list) else "")
    entries = {key: value, "After" if section == "unit" else "Restart": "always"}
    with pytest.raises(ValidationError, match=r"^%s: value ends with a backslash" % re.escape(field)):
        quadlet_render.render("container", **{section: entries})


def test_accepted_values_keep_every_directive():
    """Whatever is accepted, Quadlet reads back one key per rendered line, none swallowed."""
    options = {"Exec": "/bin/sh -c 'echo \\\\ done'", "Environment": {"A": "ends with \\", "B": "x \\  "},
               "Label": {"x": "a\\ b"}, "Image": "img"}
    service = {"ExecStartPre": "/bin/echo \\\\x", "Restart": "always"}
    keys = [(section, key) for section, key, dummy in rendered(options, service=service)]
    assert keys == [("Container", "Exec"), ("Container", "Environment"), ("Container", "Environment"),
                    ("Container", "Label"), ("Container", "Image"), ("Service", "ExecStartPre"),
                    ("Service", "Restart")]


@pytest.mark.parametrize("value, char", [
    ("red \x1b[31m", "U+001B"), ("a\tb", "U+0009"), ("nul\x00", "U+0000"), ("del\x7f", "U+007F"),
    ("c1\x85", "U+0085"), ("ls\u2028", "U+2028"),
])
def test_control_characters_are_refused_naming_the_field(value, char):
    """Finding 6: control characters are refused everywhere, naming the option (a newline keeps its old message)."""
    for section, entries, field in (("options", {"Environment": {"FOO": value}}, "options.Environment.FOO"),
                                    ("options", {"Exec": value}, "options.Exec"),
                                    ("options", {"Volume": ["/a:/a", value]}, r"options.Volume\[1\]"),
                                    ("service", {"ExecStartPre": value}, "service.ExecStartPre"),
                                    ("unit", {"Description": value}, "unit.Description")):
        with pytest.raises(ValidationError, match=r"^%s: value contains the control character %s"
                                                  % (field, re.escape(char))):
            quadlet_render.render("container", **{section: entries})
    with pytest.raises(ValidationError, match=r"^options\.Label: the name .* contains the control character %s"
                                              % re.escape(char)):
        quadlet_render.render("container", options={"Label": {"k" + value: "v"}})


def test_dollar_is_escaped_where_systemd_expands_variables():
    """Finding 6: Quadlet puts every key of the type's section into the podman command line of ExecStart=,
    where systemd expands ${HOME}, $VAR (a whole word) and $$; there '$' is written '$$' so the container gets
    the text as given. [Service] Environment= expands no variables: '$' stays."""
    options = {"Environment": {"GREETING": "${HOME} costs $5", "PATHS": "$PATH"},
               "Exec": "/bin/sh -c 'echo ${HOME} $$'", "HealthCmd": "test -n $HOSTNAME",
               "Volume": ["%h/$data:/data"], "Label": {"price$": "$1"}}
    service = {"Environment": {"A": "$x"}, "ExecStartPre": "/bin/kill -HUP $MAINPID", "ExecStop": {"B": "$y"}}
    assert rendered(options, service=service) == [
        ("Container", "Environment", '"GREETING=$${HOME} costs $$5"'),
        ("Container", "Environment", "PATHS=$$PATH"),
        ("Container", "Exec", "/bin/sh -c 'echo $${HOME} $$$$'"),
        ("Container", "HealthCmd", "test -n $$HOSTNAME"),
        ("Container", "Volume", "%h/$$data:/data"),
        ("Container", "Label", "price$$=$$1"),
        ("Service", "Environment", "A=$x"),
        ("Service", "ExecStartPre", "/bin/kill -HUP $MAINPID"),   # systemd syntax, as given: $MAINPID works
        ("Service", "ExecStop", "B=$$y"),
    ]


@needs_systemd
@pytest.mark.parametrize("value", ["date +%s", "50%", "%h", "a%%b", "100% done", "%Q", "%", "${HOME}%n"])
def test_percent_in_a_container_value_reaches_podman_as_given(tmp_path, value):
    """Finding 6: '%' was escaped only in dict values. HealthCmd=date +%s gave podman the user's shell instead
    of %s (and %Q made systemd drop ExecStart= altogether). Checked with the real systemd."""
    dummy, key, written = rendered({"HealthCmd": value})[0]
    assert key == "HealthCmd"
    assert systemd_reads(tmp_path, exec_word(written)).replace("$$", "$") == value
    dummy, key, written = rendered({"Environment": {"V": value}})[0]
    assert systemd_reads(tmp_path, written).replace("$$", "$") == "V=" + value


@needs_systemd
def test_specifiers_are_kept_in_path_keys(tmp_path):
    """Volume=%h/data:/data:Z (README, inventories) keeps its specifier: %h is the user's home."""
    assert rendered({"Volume": ["%h/data:/data:Z", "named:/x"], "EnvironmentFile": "%h/.env",
                     "ContainerName": "%N-x", "PodmanArgs": "--env-file=%h/.env"}) == [
        ("Container", "Volume", "%h/data:/data:Z"), ("Container", "Volume", "named:/x"),
        ("Container", "EnvironmentFile", "%h/.env"), ("Container", "ContainerName", "%N-x"),
        ("Container", "PodmanArgs", "--env-file=%h/.env")]
    home = systemd_reads(tmp_path, "%h")  # the path of the home, after /nonexistent/
    assert home and "%" not in home
    assert systemd_reads(tmp_path, exec_word("%h/data:/data:Z")) == home + "/data:/data:Z"
    assert systemd_reads(tmp_path, "50%%") == "50%"


def test_an_unknown_specifier_in_a_path_key_is_refused():
    """systemd refuses an unknown specifier and drops the whole command; say so before anything changes."""
    with pytest.raises(ValidationError, match=r"^options.Volume\[0\]: %Q is not a systemd specifier"):
        quadlet_render.render("container", options={"Volume": ["/srv/%Q:/q"]})
    # '%' before a non-letter, or at the end, is kept by systemd as it is.
    assert rendered({"Volume": "/srv/50%:/x%"}) == [("Container", "Volume", "/srv/50%:/x%")]


@needs_systemd
def test_the_specifier_letters_are_systemds(tmp_path):
    """Every letter this systemd resolves is accepted, and every letter it refuses is refused, except %D,
    which systemd 253+ (Debian 13 has 257) resolves."""
    for letter in string.ascii_letters:
        unit = tmp_path / "probe.service"
        unit.write_text("[Service]\nExecStart=/nonexistent/x%%%s\n" % letter)
        proc = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True)
        systemd_ok = "Failed to resolve" not in proc.stdout
        try:
            quadlet_render.render("container", options={"Volume": "/x%" + letter})
            ours = True
        except ValidationError:
            ours = False
        assert ours == (systemd_ok or letter == "D"), letter


def test_dict_items_quadlet_keeps_backslashes_in_are_refused():
    """Sysctl=, LogOpt= and AutoUpdate= are split without unescaping (LookupAllStrv): a backslash or a double
    quote cannot be written there."""
    assert rendered({"Sysctl": {"net.ipv4.ip_forward": 1, "kernel.x": "a b"}}) == [
        ("Container", "Sysctl", "net.ipv4.ip_forward=1"), ("Container", "Sysctl", '"kernel.x=a b"')]
    for value in ("a\\b", 'say "x"'):
        with pytest.raises(ValidationError, match=r"^options.Sysctl.k: "):
            quadlet_render.render("container", options={"Sysctl": {"k": value}})


@needs_systemd
def test_dict_items_reach_podman_as_given(tmp_path):
    """A dict item is one word: quotes, backslashes, '%' and '$' come out of Quadlet and systemd unchanged."""
    values = ['say "hi"', "back\\slash", "it's", " spaced ", "100%", "tab\\t", "%h"]
    lines = rendered({"Environment": dict(("K%d" % i, v) for i, v in enumerate(values))})
    for index, (dummy, dummy, written) in enumerate(lines):
        assert systemd_reads(tmp_path, written) == "K%d=%s" % (index, values[index])


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


def test_a_service_name_that_is_not_a_unit_name_is_refused():
    """The name goes on root's systemctl command line; an installed file's ServiceName= is the user's text."""
    with pytest.raises(ValidationError, match=r"^options.ServiceName: '-Hevil' is not a valid unit name"):
        quadlet_render.service_name("web", "container", {"ServiceName": "-Hevil"})
    content = "[Container]\nServiceName=--root=/tmp/x\n"
    with pytest.raises(ValidationError, match=r"^/u/web.container: ServiceName: '--root=/tmp/x' is not a valid"):
        quadlet_render.service_name_from_content("web", "container", content, "/u/web.container")
