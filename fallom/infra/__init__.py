"""Process infrastructure: settings, the guard, fork and exit handling.

Owns what every other layer leans on and nothing about spans or the wire:
resolving and validating the configuration (``_config``: one declaration per
setting), keeping fallom's own errors out of user code (``_guard``), resetting
locks and threads in a forked child (``_fork``) and draining at exit or on
SIGTERM (``_exit``). It imports nothing from fallom; everything may import it.
See docs/design.md §2.
"""
