# Auto-load the ``deepseek_magic`` IPython extension (``%%deepseek``) in every new IPython/kernel.
#
# Installed by the ``deepseek-magic`` wheel to ``{sys.prefix}/etc/ipython/startup/``, which IPython
# scans for start-up files. Set ``DEEPSEEK_MAGIC_NO_AUTOLOAD=1`` to turn it off; ``%load_ext
# deepseek_magic`` then still works by hand. Loading goes through the extension manager, so a later
# ``%load_ext deepseek_magic`` is a no-op and ``%unload_ext deepseek_magic`` works.
#
# IPython executes this file in the user namespace: no module docstring (it would overwrite
# ``__doc__``), everything inside one function, and the function is deleted afterwards.


def _deepseek_magic_autoload() -> None:
    import os

    if os.environ.get("DEEPSEEK_MAGIC_NO_AUTOLOAD", "").strip() not in ("", "0"):
        return
    try:
        import IPython
    except ImportError:
        return
    ip = IPython.get_ipython()
    if ip is None:
        return
    import importlib.util

    try:
        if importlib.util.find_spec("deepseek_magic") is None:
            return
    except (ImportError, ValueError):
        return
    try:
        ip.extension_manager.load_extension("deepseek_magic")
    except Exception as exc:  # a start-up file must never break the kernel
        import warnings

        warnings.warn(
            f"deepseek_magic: auto-load failed ({type(exc).__name__}: {exc}); "
            "use %load_ext deepseek_magic, or set DEEPSEEK_MAGIC_NO_AUTOLOAD=1 to silence this.",
            RuntimeWarning,
            stacklevel=1,
        )


try:
    _deepseek_magic_autoload()
finally:
    del _deepseek_magic_autoload
