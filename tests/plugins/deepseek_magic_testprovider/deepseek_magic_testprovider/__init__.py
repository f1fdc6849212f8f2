"""A provider plugin the way a third party writes one: one OpenAICompatible, one entry point."""

from __future__ import annotations

from deepseek_magic.providers import ModelInfo, OpenAICompatible

TESTPROVIDER = OpenAICompatible(
    name="testprovider",
    display_name="Test Provider",
    base_url="https://testprovider.invalid/v1",  # TESTPROVIDER_BASE_URL points it elsewhere (the emulator)
    key_variable="TESTPROVIDER_API_KEY",
    base_url_variable="TESTPROVIDER_BASE_URL",
    models=[ModelInfo("deepseek-v4-pro", context_window=128_000, max_output=8_192, concurrency=4)],
)
