"""The incident store: events in, incidents out.

``protocol`` is the interface every backend keeps (and the records it returns), ``policy``
how the store judges time, ``sqlite`` the embedded backend the agent writes to,
``postgres`` the shared one of a central deployment, ``backends`` which one a URL names.
Both the agent's embedded store and the central service use this package; it imports
neither of them.
"""
