"""Social channel adapters: Facebook Page posts over the Graph API, Zalo Notification Service (ZNS) messages.

See docs/social.md for the settings keys, the error tables and what is confirmed about each provider.
"""
