"""The client layer: sends a provider's calls over HTTP and hands back normalized events.

Only this layer talks to the network (the reply cache and the cost estimate
live here too, since the client consults them around each call). Modules:
``flow`` (sans-IO request flow), ``sync`` and ``aio`` (the two thin loops that
perform it), ``sse`` (stream decoding), ``retry`` (the one retry policy),
``cache`` (the reply cache), ``estimate`` (the one cost estimator).
"""

from deepseek_magic.client.aio import AsyncChatClient
from deepseek_magic.client.flow import EventCallback, Polling, RetryNotice, StreamDecoder, is_blank
from deepseek_magic.client.retry import MAX_RETRY_AFTER, RETRYABLE_STATUS, RetryPolicy, parse_retry_after, retry_delay
from deepseek_magic.client.sync import ChatClient

__all__ = [
    "MAX_RETRY_AFTER",
    "RETRYABLE_STATUS",
    "AsyncChatClient",
    "ChatClient",
    "EventCallback",
    "Polling",
    "RetryNotice",
    "RetryPolicy",
    "StreamDecoder",
    "is_blank",
    "parse_retry_after",
    "retry_delay",
]
