"""monitord: the junior technician of a web-hosting support desk, as a daemon."""

__version__ = "0.1.0"
