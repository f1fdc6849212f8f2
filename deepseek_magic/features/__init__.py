"""The features layer: what a request can carry beyond plain text, without I/O.

JSON mode and schema checks (``structured``), tool calls (``tools``) and
prompt interpolation of notebook values (``interpolation``). A conversation
uses them; they never send anything themselves.
"""
