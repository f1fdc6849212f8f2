"""The core layer: plain facts every other layer may use, importing nothing of the package.

Errors and their one-line rendering, normalized stream events, bounded file
I/O, provider-independent request limits, text checks, prices and holidays.
Nothing here does network I/O or knows about IPython.
"""
