"""DeepSeek's own API (https://api.deepseek.com; beta features under /beta).

Key variable ``DEEPSEEK_API_KEY``. Effort ``medium`` is served as ``high``
(DeepSeek's mapping table); chat prefix completion and strict tools use the
beta base; ``GET /user/balance`` exists.
"""

from __future__ import annotations

from .openai_compat import DEEPSEEK_EFFORT, OpenAICompatProvider

DEEPSEEK = OpenAICompatProvider(
    name="deepseek",
    display_name="DeepSeek",
    base_urls=("https://api.deepseek.com",),
    beta_base_url="https://api.deepseek.com/beta",
    effort_map=DEEPSEEK_EFFORT,
    has_balance=True,
)
