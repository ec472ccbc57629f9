"""Channel adapters: one module per provider, grouped by channel, behind one small protocol.

This package never imports ``broadcaster``: adapters classify what the provider said, the engine decides.
"""
