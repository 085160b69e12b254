"""The incident store: events in, incidents out.

``protocol`` is the interface every backend keeps (``model`` the records it returns),
``policy`` how the store judges time, ``rules`` the incident rules written once (what each
event does, reopen, attach, resolve, the sweep; ``actions`` acknowledge, resolve and
comment, ``escalation`` escalate, notices and a window's end) with ``priority`` (an
incident's priority follows the current severity), ``flapping`` (notices held while a
check flaps) and ``tell`` (timeline entries, notices, maintenance silence)
and ``queries`` the reads and bookkeeping beside them, both as scripts of named statements
(``ops``) that ``base`` runs for every Protocol method. The backends only run statements:
``sqlite`` (the embedded one the agent writes to) with its ``sqlite_dialect``, and
``postgres`` (the shared one of a central deployment) with its ``postgres_dialect``;
``records`` turns their rows into records, ``migrations`` finds the schema files, and
``backends`` says which one a URL names. Both the agent's embedded store and the central
service use this package; it imports neither of them.
"""
