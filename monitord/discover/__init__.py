"""Sites from the web server itself: nginx's effective config, Apache's vhost dump,
PHP-FPM's pool files -> ``Discovery`` (sites, what was skipped and why, pools) -> the
checks the admin's site rules give each site (``checks.py``).

Used by the config (expansion of the site rules) and by the agent (the watcher that
follows the server as it changes); it imports neither.
"""
