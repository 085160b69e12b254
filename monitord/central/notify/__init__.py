"""Telling people about incidents: mail, generic webhooks, Slack and PagerDuty.

``settings`` holds the config ([mail], [[channel]], [escalation]); ``routing`` decides
which channels hear which notice, and ``people`` who hears it where an escalation policy
covers the incident's priority (people's contact methods, whoever ``rotation`` says is on
call at the moment of the send); ``message`` is what every sender is handed; one module
per channel type sends it (``senders.SENDERS``); ``monitord.central.notify.notifier`` runs the
delivery rounds. This package's own import stays light: the config loader imports
``settings`` and must not pull in the senders' libraries.
"""
