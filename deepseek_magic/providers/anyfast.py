"""Anyfast (https://www.anyfast.ai/v1), an OpenAI-compatible reseller.

Key variable ``ANYFAST_API_KEY``. Its documented request puts
``reasoning_effort`` inside ``thinking`` and takes all four effort values;
its usage reports only ``prompt_tokens_details.cached_tokens`` (read by
:meth:`deepseek_magic.core.events.Usage.from_wire`) and each choice carries
``matched_stop``. No balance endpoint is documented.
"""

from __future__ import annotations

from deepseek_magic.providers.base import ModelInfo
from deepseek_magic.providers.openai_compat import OpenAICompatProvider

#: Resellers keep the V4 names. Only Flash accepts images.
RESELLER_MODELS = (ModelInfo("deepseek-v4-flash", vision=True), ModelInfo("deepseek-v4-pro"))

ANYFAST = OpenAICompatProvider(
    name="anyfast",
    display_name="Anyfast",
    base_urls=("https://www.anyfast.ai/v1",),
    key_variable="ANYFAST_API_KEY",
    base_url_variable="ANYFAST_BASE_URL",
    models=RESELLER_MODELS,
    effort_inside_thinking=True,
)
