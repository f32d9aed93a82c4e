"""JupyterLab set up for a course: no news popup, no update checks, the course kernel by default.

`make install` copies lmcourse/jupyter/* into .venv (never into the user's settings); these tests
read them back the way JupyterLab and the Jupyter server do.
"""

import json
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "lmcourse" / "jupyter"
INSTALL_HINT = "run `make install` (it copies lmcourse/jupyter/* into .venv)"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def test_jupyterlab_reads_the_override_that_turns_news_and_update_checks_off(tmp_path):
    from jupyterlab.commands import get_app_dir
    from jupyterlab_server.settings_utils import get_settings

    app_dir = Path(get_app_dir())
    installed = app_dir / "settings" / "overrides.json"
    assert installed.is_file(), f"{installed} is missing; {INSTALL_HINT}"
    assert json.loads(installed.read_text()) == json.loads((SOURCE / "overrides.json").read_text()), INSTALL_HINT
    # an empty user settings dir: the defaults a new learner gets come from the override
    found, _ = get_settings(str(app_dir / "settings"), str(app_dir / "schemas"), str(tmp_path), NOTIFICATION)
    properties = found["schema"]["properties"]
    assert properties["fetchNews"]["default"] == "false"
    assert properties["checkForUpdates"]["default"] is False


def test_the_override_lives_in_the_environment_not_in_the_users_settings():
    from jupyterlab.commands import get_app_dir

    assert Path(get_app_dir()).is_relative_to(sys.prefix)


def test_the_jupyter_server_starts_the_course_kernel_by_default(monkeypatch, tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_server.serverapp import ServerApp

    installed = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.json"
    assert installed.is_file(), f"{installed} is missing; {INSTALL_HINT}"
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))  # ignore this machine's user config
    app = ServerApp()
    app.load_config_file()
    name = app.config.MappingKernelManager.default_kernel_name
    assert name == "lmcourse"
    if name not in KernelSpecManager().find_kernel_specs():
        pytest.fail(f"the default kernel {name!r} is not registered; {INSTALL_HINT}")
