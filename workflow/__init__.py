"""The incident engine: everything breachflow knows about incidents, independent of how it is reached.

Public surface, by module:
- ``lifecycle``: the one definition (``State``, ``Trigger``, ``STEPS``), the shared machine, ``available``,
  ``advance``.
- ``guards``: what each trigger still misses; ``responsibility``: who notifies the AP.
- ``deadlines``: the clocks, as pure functions; ``clocks``: the same clocks as indexed rows, kept by the
  commands; ``disclosure``: the fields of seed 6c.
- ``unit``: the one unit of work every incident command goes through; ``timeline``: its events and keyed chain.
- ``service`` (incident commands), ``schools``, ``accounts``: the commands, each one transaction.
- ``queries`` and ``register``: reading incidents, timelines, deadlines and the register's history, a
  page at a time (``pages``: the cursors every list shares).
- ``audit``: verifying and replaying the chains; ``checkpoints``: signed checkpoints of them.
- ``retention``: destroying a school's personal data two months after its contract ends (seed section 4).
- ``context``: settings, database, keys and the ``hooks.Notifier`` a command calls; ``keystore`` and
  ``keycheck``: where keys come from and that they belong to this database.
- ``errors``: the exception tree. ``api`` and ``notifications`` import this package, never the reverse.
"""
