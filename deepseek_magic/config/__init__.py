"""The configuration layer: the one :class:`~deepseek_magic.config.settings.Settings`.

Cells, ``%config``, ``%deepseek config``, the settings form, the chat and
``Session()`` all read and write the same object; it sits just above the
provider registry so it can check provider and model names against it.
"""
