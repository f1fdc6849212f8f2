"""A real ipykernel driven through jupyter_client, for tests that need one."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel


@dataclass
class Execution:
    """What one execute_request produced."""

    msg_id: str
    reply: dict[str, Any] | None = None
    iopub: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        return None if self.reply is None else self.reply["content"]["status"]

    def text(self) -> str:
        out = []
        for message in self.iopub:
            content = message["content"]
            if message["msg_type"] == "stream":
                out.append(content["text"])
            elif message["msg_type"] in ("display_data", "update_display_data", "execute_result"):
                out.append(content["data"].get("text/plain", ""))
                out.append(content["data"].get("text/markdown", ""))
            elif message["msg_type"] == "error":
                out.append(f"{content['ename']}: {content['evalue']}")
        return "\n".join(out)


class Kernel:
    """Sends cells (with a JupyterLab-style cellId) and collects their messages."""

    def __init__(self, manager: KernelManager, client: BlockingKernelClient) -> None:
        self.manager = manager
        self.client = client

    def send(self, code: str, cell_id: str | None = None) -> Execution:
        """Send one cell. Without ``stop_on_error``: these tests send a cell only after the previous one ended,
        and ipykernel (6.29, the lowest declared) may still be aborting its queue after an error or an interrupt
        when the next request arrives, which then ends as "aborted" without running (seen in CI)."""
        return Execution(send_execute_request(self.client, code, cell_id, stop_on_error=False))

    def wait_for_iopub(self, execution: Execution, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            if message["parent_header"].get("msg_id") != execution.msg_id:
                continue
            execution.iopub.append(message)
            if predicate(message):
                return message
        raise TimeoutError("the expected output did not arrive")

    def finish(self, execution: Execution, timeout: float = 60) -> Execution:
        deadline = time.monotonic() + timeout
        while execution.reply is None and time.monotonic() < deadline:
            try:
                reply = self.client.get_shell_msg(timeout=0.1)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == execution.msg_id:
                execution.reply = reply
        # drain iopub up to the idle status of this request
        while time.monotonic() < deadline:
            try:
                message = self.client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                break
            if message["parent_header"].get("msg_id") != execution.msg_id:
                continue
            execution.iopub.append(message)
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        if execution.reply is None:
            raise TimeoutError("no execute_reply")
        return execution

    def run(self, code: str, cell_id: str | None = None, timeout: float = 60) -> Execution:
        return self.finish(self.send(code, cell_id), timeout)


def send_execute_request(
    client: Any, code: str, cell_id: str | None, *, store_history: bool = True, stop_on_error: bool = True
) -> str:
    """Send ``code`` the way JupyterLab does, with the cell's id in ``metadata.cellId`` (plain
    jupyter_client and nbclient leave it out); returns the message id."""
    content = {
        "code": code,
        "silent": False,
        "store_history": store_history,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": stop_on_error,
    }
    message = client.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
    client.shell_channel.send(message)
    return str(message["header"]["msg_id"])


@contextmanager
def real_kernel(env: dict[str, str]) -> Iterator[Kernel]:
    manager, client = start_new_kernel(kernel_name="python3", env={**os.environ, **env}, startup_timeout=60)
    try:
        yield Kernel(manager, client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
