"""Who agreed to what, on which channel; suppressions. Never imports ``broadcaster``."""
