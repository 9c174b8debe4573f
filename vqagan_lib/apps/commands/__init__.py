"""The command line's command groups, one module each, registered by apps/cli.py."""
