"""The emulator's server stack (starlette, uvicorn) is an extra: the library works without it.

A subprocess blocks both packages (``sys.modules[name] = None`` makes any import of them fail), then imports the
package, loads the magics and asks through ``Session.ask`` and a ``%%deepseek`` cell against a raw loopback server
written with the standard library; ``deepseek-magic emulator`` says in one line how to install the extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys, threading
for name in ("starlette", "uvicorn"):
    sys.modules[name] = None  # any import of them now raises ImportError
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNKS = [
    {"id": "x", "object": "chat.completion.chunk", "model": "deepseek-flash",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello from a raw server"}}]},
    {"id": "x", "object": "chat.completion.chunk", "model": "deepseek-flash",
     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
     "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
]
seen = []

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        payload = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in CHUNKS) + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
import os
os.environ["DEEPSEEK_BASE_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
os.environ["DEEPSEEK_API_KEY"] = "sk-raw-server-123456"

from deepseek_magic import Session
reply = Session().ask("hi")

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "deepseek_magic")
with capture_output() as captured:
    ip.run_cell("%%deepseek --view text\nhi again").raise_error()

from deepseek_magic.cli import main
import contextlib, io
err = io.StringIO()
with contextlib.redirect_stderr(err):
    code = main(["emulator"])
loaded = sorted(n for n, m in sys.modules.items() if m is not None and n.split(".")[0] in ("starlette", "uvicorn"))
models = [b["model"] for b in seen]
print(json.dumps({"reply": reply.content, "cell": captured.stdout, "requests": len(seen), "models": models,
                  "loaded": loaded, "code": code, "message": err.getvalue()}))
server.shutdown()
"""


@pytest.mark.slow
def test_the_library_runs_without_the_emulator_stack(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL", "_PROVIDER"))}
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["reply"] == "Hello from a raw server" and "Hello from a raw server" in report["cell"]
    assert report["requests"] == 2 and report["models"] == ["deepseek-flash", "deepseek-flash"]
    assert report["loaded"] == [], "nothing of starlette or uvicorn was imported"
    assert report["code"] == 1
    message = report["message"].strip()
    assert "\n" not in message and 'pip install "deepseek-magic[emulator]"' in message


def test_the_server_stack_is_an_extra_pulled_in_by_lab_and_test() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = " ".join(project["dependencies"])
    assert "starlette" not in runtime and "uvicorn" not in runtime
    extras = project["optional-dependencies"]
    assert {spec.split(">")[0] for spec in extras["emulator"]} == {"starlette", "uvicorn"}
    assert "deepseek-magic[emulator]" in extras["lab"] and "deepseek-magic[emulator]" in extras["test"]
