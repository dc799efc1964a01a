"""The incident engine: everything breachflow knows about incidents, independent of how it is reached.

Public surface, by module:
- ``lifecycle``: the one definition (``STATES``, ``STEPS``), the shared machine, ``available``, ``advance``.
- ``guards``: what each trigger still misses; ``responsibility``: who notifies the AP.
- ``deadlines``: the clocks, as pure functions; ``disclosure``: the fields of seed 6c.
- ``service`` (incident commands), ``schools``, ``accounts``: the commands, each one transaction.
- ``queries``: reading incidents, timelines, deadlines; verifying the hash chains.
- ``context``: settings, database, keys and the ``hooks.Notifier`` a command calls.
- ``errors``: the exception tree. ``api`` and ``notifications`` import this package, never the reverse.
"""
