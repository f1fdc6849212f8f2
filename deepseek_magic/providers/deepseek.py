"""DeepSeek's own API (https://api.deepseek.com; beta features under /beta).

Key variable ``DEEPSEEK_API_KEY``. Effort ``medium`` is served as ``high``
(DeepSeek's mapping table); chat prefix completion and strict tools use the
beta base; ``GET /user/balance`` exists.
"""

from __future__ import annotations

from deepseek_magic.providers.base import ModelInfo
from deepseek_magic.providers.openai_compat import DEEPSEEK_EFFORT, OpenAICompatProvider

#: Since 2026-09-10 Flash is ``deepseek-flash`` (DeepSeek-V4.1-Flash); ``deepseek-v4-flash`` and the retired
#: vision preview are legacy names it still accepts. 1M context, 384K output; per-account concurrency 2,500 on
#: Flash and 500 on Pro (api-docs.deepseek.com quick_start/pricing and rate_limit).
DEEPSEEK_MODELS = (
    ModelInfo(
        "deepseek-flash",
        vision=True,
        concurrency=2500,
        aliases=("deepseek-v4-flash", "deepseek-v4-flash-vision-exp"),
    ),
    ModelInfo("deepseek-v4-pro", concurrency=500),
)

DEEPSEEK = OpenAICompatProvider(
    name="deepseek",
    display_name="DeepSeek",
    base_urls=("https://api.deepseek.com",),
    key_variable="DEEPSEEK_API_KEY",
    base_url_variable="DEEPSEEK_BASE_URL",
    models=DEEPSEEK_MODELS,
    beta_base_url="https://api.deepseek.com/beta",
    effort_map=DEEPSEEK_EFFORT,
    has_balance=True,
)
