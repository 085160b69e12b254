"""On call, as people manage it: ``parse`` turns what they type (zones, times, contact
methods, policy steps) into the store's records with one-line errors, and ``manage`` is
what the ``monitord central`` person, contact, schedule, policy and oncall commands do.

Who is on call at an instant is ``notify.rotation`` (pure time arithmetic), and who hears
a notice under an escalation policy is ``notify.people``: the notifier decides those, so
they live beside it. The records are the store's (``monitord.store.people``).
"""
