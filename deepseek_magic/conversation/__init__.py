"""The conversation layer: sessions, their turns and files, and the controllers that drive them.

A :class:`~deepseek_magic.conversation.session.Session` owns the history,
plans each request (features), sends it (client) and keeps every billed
reply, partial ones included. Controllers give views actions to call, so
views only render.
"""
