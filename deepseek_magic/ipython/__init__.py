"""The IPython layer: ``%%deepseek``, ``%deepseek`` and everything bound to a running shell.

The top of the stack: it parses magic arguments, picks a view (ui) and hands
the work to a session (conversation) or a batch.
"""
