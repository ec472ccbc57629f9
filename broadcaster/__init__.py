"""Broadcaster: turns approved campaign definitions into messages and delivers them over real channels."""

__version__ = "0.1.0"
