"""Evolink (https://direct.evolink.ai/v1, falling back to https://api.evolink.ai/v1).

Key variable ``EVOLINK_API_KEY``. The direct base is meant for text models
and long-lived connections; when it cannot be reached the client tries the
second base (nothing was sent to the first). Thinking is on by default; it
takes ``n`` 1-8, ``logprobs``/``top_logprobs``, ``logit_bias``, ``seed`` and
``user`` (not ``user_id``).
"""

from __future__ import annotations

from deepseek_magic.providers.anyfast import RESELLER_MODELS
from deepseek_magic.providers.openai_compat import DEEPSEEK_EFFORT, OpenAICompatProvider

EVOLINK = OpenAICompatProvider(
    name="evolink",
    display_name="Evolink",
    base_urls=("https://direct.evolink.ai/v1", "https://api.evolink.ai/v1"),
    key_variable="EVOLINK_API_KEY",
    base_url_variable="EVOLINK_BASE_URL",
    models=RESELLER_MODELS,
    effort_map=DEEPSEEK_EFFORT,
    user_field="user",
)
