"""On call: who is told of an incident, by name and rotation.

``rotation`` is the time arithmetic (who is on call at an instant, pure); ``parse``
turns what people type (zones, times, steps) into the store's records, with one-line
errors; ``routing`` resolves an escalation policy's step to people's contact methods at
send time, for the notifier; ``manage`` is what the ``monitord central`` commands do.
The records themselves are kept by the store (``monitord.store.people``).
"""
