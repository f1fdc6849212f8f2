"""A third-party provider, installed for real with pip, selected by ``--provider`` in a fresh IPython process.

The plugin (``tests/plugins/deepseek_magic_testprovider``) is a hatchling package whose entry point registers an
``OpenAICompatible`` reading its base URL from ``TESTPROVIDER_BASE_URL``. Nothing in deepseek_magic names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepseek_magic.emulator import EmulatorConfig, run_in_thread

PLUGIN = Path(__file__).parent / "plugins" / "deepseek_magic_testprovider"
PLUGIN_KEY = "sk-testprovider-0123456789"

SCRIPT = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from deepseek_magic.providers import get_provider, provider_names

ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "deepseek_magic")
with capture_output() as captured:
    result = ip.run_cell("%%deepseek --provider testprovider --no-think --view text\nSay hello.")
    help_result = ip.run_cell("%deepseek help")
result.raise_error()
help_result.raise_error()
helptext = "".join(o.data.get("text/plain", "") for o in captured.outputs)
print(json.dumps({
    "names": provider_names(),
    "display": get_provider("testprovider").display_name,
    "stdout": captured.stdout,
    "help_lists_it": "testprovider" in helptext and "TESTPROVIDER_API_KEY" in helptext,
}))
"""


@pytest.mark.slow
def test_an_installed_plugin_is_selected_by_provider(tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--target", str(target), str(PLUGIN)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "deepseek_magic_testprovider" / "__init__.py").is_file()
    assert any(path.name.endswith(".dist-info") for path in target.iterdir()), "installed with its entry points"

    with run_in_thread(EmulatorConfig(api_key=PLUGIN_KEY)) as emu:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.endswith(("_API_KEY", "_BASE_URL")) and key != "DEEPSEEK_PROVIDER"
        }
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")])),
            TESTPROVIDER_BASE_URL=emu.base_url,
            TESTPROVIDER_API_KEY=PLUGIN_KEY,
            DEEPSEEK_API_KEY="sk-deepseek-never-sent-1234",
            IPYTHONDIR=str(tmp_path / "ipython"),
        )
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        chats = [r for r in emu.requests if r.path.endswith("/chat/completions")]

    assert report["names"][:4] == ["deepseek", "anyfast", "evolink", "runware"] and "testprovider" in report["names"]
    assert report["display"] == "Test Provider" and report["help_lists_it"]
    assert "[emulated]" in report["stdout"], "the reply streamed into the cell"
    assert len(chats) == 1, "one request, to the plugin's base URL (the emulator answers 401 to any other key)"
    assert chats[0].body["model"] == "deepseek-v4-pro", "the plugin's model replaced DeepSeek's default"
    assert chats[0].body["thinking"] == {"type": "disabled"}
    assert "sk-deepseek-never-sent" not in done.stdout + done.stderr
