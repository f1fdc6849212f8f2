"""Scripted replies: exact text (or an error) for the next chat requests, streamed or not, one per request."""

from __future__ import annotations

import httpx

from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.errors import APIStatusError
from deepseek_magic.emulator import EmulatorConfig, Scripted, run_in_thread


def test_scripted_replies_and_errors_are_used_once_each_in_order() -> None:
    with run_in_thread(EmulatorConfig(api_key="sk-emulator")) as emu:
        emu.config.scripted.extend(
            [
                Scripted(content="exact <b>answer</b>", reasoning="exact thought"),
                Scripted(content="not streamed"),
                Scripted(error="scripted failure", status=422),
            ]
        )
        settings = Settings.build(base_url=emu.base_url, api_key="sk-emulator", max_retries=0)
        streamed = Session(settings=settings).ask("one")
        assert (streamed.content, streamed.reasoning) == ("exact <b>answer</b>", "exact thought")
        assert Session(settings=settings.merged(stream=False)).ask("two").content == "not streamed"
        try:
            Session(settings=settings).ask("three")
        except APIStatusError as exc:
            assert exc.status_code == 422 and "scripted failure" in str(exc)
        else:
            raise AssertionError("the scripted error was not raised")
        assert not emu.config.scripted
        assert "[emulated]" in Session(settings=settings).ask("four").content, "then composed replies again"
        unauthorised = httpx.post(f"{emu.base_url}/chat/completions", json={}, timeout=10)
        assert unauthorised.status_code == 401, "the key check comes first"
