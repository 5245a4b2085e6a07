"""The host programs get exactly the module_utils they import (COMMON convention, issue 12).

Each of selfhost-update, selfhost-backup and selfhost-blog-build imports
module_utils from /usr/local/lib/selfhost-pi/python; its role copies them
there from an explicit list in roles/ROLE/vars/main.yml. The list must be the
transitive closure of the program's imports (parsed, not run), and the role
must install from that list, not from a hand-written one.
"""
import ast
import os
import shlex
import subprocess

import jinja2
import pytest
import yaml

from ansible_collections.selfhost.pi.plugins.module_utils import constants

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")
PACKAGE = "ansible_collections.selfhost.pi.plugins.module_utils"
INSTALL_DIR = constants.PYTHON_LIB_DIR + "/" + PACKAGE.replace(".", "/")

PROGRAMS = [
    pytest.param("service", "selfhost-update", "__service_module_utils", id="selfhost-update"),
    pytest.param("backup", "selfhost-backup", "__backup_module_utils", id="selfhost-backup"),
    pytest.param("blog", "selfhost-blog-build", "__blog_module_utils", id="selfhost-blog-build"),
]


def imported_module_utils(path):
    """The module_utils names (``X`` of ``...module_utils.X``) that a Python file imports."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, "%s: relative imports are not installed" % path
            if node.module == PACKAGE:
                found.update(alias.name for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module[len(PACKAGE) + 1:].split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name[len(PACKAGE) + 1:].split(".")[0])
    return found


def closure(program):
    seen, todo = set(), set(imported_module_utils(program))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source = os.path.join(MODULE_UTILS, name + ".py")
        assert os.path.isfile(source), "%s imports module_utils %s, which does not exist" % (program, name)
        todo |= imported_module_utils(source) - seen
    return sorted(name + ".py" for name in seen)


def role_vars(role):
    with open(os.path.join(ROOT, "roles", role, "vars", "main.yml")) as handle:
        return yaml.safe_load(handle) or {}


def resolve(text, role):
    """``text`` with the role's own variables (vars and defaults) put in, as far as they are plain."""
    variables = {}
    for kind in ("defaults", "vars"):
        path = os.path.join(ROOT, "roles", role, kind, "main.yml")
        if os.path.exists(path):
            with open(path) as handle:
                variables.update(yaml.safe_load(handle) or {})
    for _ in range(5):
        for key, value in variables.items():
            text = text.replace("{{ %s }}" % key, str(value))
    return text


def tasks(role):
    """Every task of the role's task files, blocks flattened."""
    found = []
    folder = os.path.join(ROOT, "roles", role, "tasks")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as handle:
            todo = list(yaml.safe_load(handle) or [])
        while todo:
            task = todo.pop(0)
            for key in ("block", "rescue", "always"):
                todo.extend(task.get(key) or [])
            found.append(task)
    return found


def program_path(role, program):
    return os.path.join(ROOT, "roles", role, "files", program)


def test_the_import_parser_sees_every_form(tmp_path):
    source = tmp_path / "prog"
    source.write_text("import os\n"
                      "from ansible_collections.selfhost.pi.plugins.module_utils import host, errors\n"
                      "from ansible_collections.selfhost.pi.plugins.module_utils.constants import ETC_DIR\n"
                      "import ansible_collections.selfhost.pi.plugins.module_utils.systemd as s\n"
                      "from ansible.module_utils.basic import AnsibleModule\n")
    assert imported_module_utils(str(source)) == {"host", "errors", "constants", "systemd"}


@pytest.mark.parametrize("role,program,variable", PROGRAMS)
def test_the_list_is_the_closure_of_the_imports(role, program, variable):
    declared = role_vars(role).get(variable)
    assert isinstance(declared, list), "roles/%s/vars/main.yml: %s is not declared" % (role, variable)
    assert len(declared) == len(set(declared)), "%s lists a file twice" % variable
    assert sorted(declared) == closure(program_path(role, program))


@pytest.mark.parametrize("role,program,variable", PROGRAMS)
def test_the_role_installs_from_the_list(role, program, variable):
    copies = [task for task in tasks(role) if "plugins/module_utils" in str(
        (task.get("ansible.builtin.copy") or task.get("copy") or {}).get("src", ""))]
    assert copies, "roles/%s installs no module_utils" % role
    for task in copies:
        copy = task.get("ansible.builtin.copy") or task.get("copy")
        assert task.get("loop") == "{{ %s }}" % variable, "%r: loop over %s, not a hand list" % (task["name"], variable)
        assert copy["src"].endswith("/plugins/module_utils/{{ item }}")
        assert resolve(copy["dest"], role) == INSTALL_DIR + "/{{ item }}"
        assert (copy.get("owner"), copy.get("group"), copy.get("mode")) == ("root", "root", "0644")


@pytest.mark.parametrize("role,program,variable", PROGRAMS)
def test_the_program_finds_them_where_they_are_installed(role, program, variable):
    """Where its imports are: written in the program, or read from its config, which the role
    writes from a variable equal to the constant."""
    with open(program_path(role, program)) as handle:
        source = handle.read()
    if 'sys.path.insert(0, json.load(handle)["python_lib"])' in source:
        assert role_vars(role)["__%s_python_lib" % role] == constants.PYTHON_LIB_DIR
        assert "python_lib" in role_vars(role)["__%s_config" % role]
    else:
        assert 'sys.path.insert(0, "%s")' % constants.PYTHON_LIB_DIR in source


def test_the_service_roles_paths_are_the_constants():
    values = role_vars("service")
    assert values["__service_libexec_dir"] == constants.LIBEXEC_DIR
    assert values["__service_python_dir"] == constants.PYTHON_LIB_DIR
    assert values["__service_updates_config_dir"] == constants.UPDATES_CONFIG_DIR
    assert values["__service_updates_state_dir"] == constants.UPDATES_STATE_DIR
    # The webhook role's option wins, so its spools and the .path units always agree.
    assert values["service_request_dir"] == "{{ webhook_request_dir | default('%s') }}" % constants.REQUEST_DIR


# -- roles/webhook: its paths and its one host program ---------------------------
def test_the_webhook_roles_paths_are_the_constants():
    values = role_vars("webhook")
    assert values["__webhook_etc_dir"] == constants.ETC_DIR
    assert values["__webhook_libexec_dir"] == constants.LIBEXEC_DIR
    assert resolve("{{ webhook_request_dir }}", "webhook") == constants.REQUEST_DIR
    assert resolve("{{ webhook_hooks_file }}", "webhook").startswith(constants.ETC_DIR + "/")
    assert resolve("{{ webhook_request_command }}", "webhook") == constants.LIBEXEC_DIR + "/selfhost-hook-request"


def render_hook_request(request_dir):
    """The request command as the role templates it (Ansible's quote filter is shlex.quote)."""
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["quote"] = shlex.quote
    with open(os.path.join(ROOT, "roles", "webhook", "templates", "selfhost-hook-request.j2")) as handle:
        return env.from_string(handle.read()).render(webhook_request_dir=request_dir)


def test_the_hook_request_command_writes_where_the_role_says(tmp_path):
    """It used to write to /var/lib/selfhost-pi/requests whatever webhook_request_dir said."""
    spool = tmp_path / "my requests"
    (spool / "deploy-docs").mkdir(parents=True)
    program = tmp_path / "selfhost-hook-request"
    program.write_text(render_hook_request(str(spool)))
    result = subprocess.run(["sh", str(program), "deploy-docs"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "request queued for deploy-docs\n", result.stderr
    (entry,) = os.listdir(str(spool / "deploy-docs"))
    assert os.stat(str(spool / "deploy-docs" / entry)).st_mode & 0o777 == 0o640
    for bad in ("", "../deploy-docs", ".hidden", "a/b"):
        assert subprocess.run(["sh", str(program), bad], capture_output=True).returncode == 2


def test_the_hook_request_command_is_unchanged_for_the_default_dir():
    """Converged hosts keep the file they have (changed=0)."""
    rendered = render_hook_request(constants.REQUEST_DIR)
    assert "\ndir=/var/lib/selfhost-pi/requests/$1\n" in rendered and rendered.endswith('queued for $1"\n')
