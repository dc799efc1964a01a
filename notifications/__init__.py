"""Notices to schools and reminders to staff, delivered through a transactional outbox.

- ``notices``: the ``Notifier`` that writes notices into the outbox inside a command, and forgets them for retention.
- ``render``: templates → a MIME message (plain text and HTML, UTF-8, stable Message-ID).
- ``outbox``: claiming, marking, listing and requeueing outbox rows.
- ``mailer``: where messages go: an SMTP server (aiosmtplib) or a local maildir.
- ``dispatcher``: sends what is due, with retries, backoff and dead letters.
- ``reminders``: the deadline scanner.
- ``bounces``, ``bounced``, ``bouncebox``: bounces read (DSN, non-standard, VERP), recorded against their
  message (dead letters, schools no longer informed), from a maildir or IMAP mailbox.
- ``worker``: dispatcher, scanner, bounce reader, checkpoints and the daily retention run together; ``heartbeat``: its row in the database.
- ``health``: readiness (database, a worker's heartbeat, an outbox that moves).
"""
