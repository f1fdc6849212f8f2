"""Views: turn the normalized event stream into something a person can watch.

Views know events and replies, never the wire format. Each view is one module;
:func:`deepseek_magic.ui.choose.choose_view` picks one for the frontend.
"""
