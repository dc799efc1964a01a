"""Alembic's migration environment for breachflow's schema: ``env.py``, ``script.py.mako`` and one
script per revision in ``versions/``. Shipped in the package; ``workflow.schema`` runs it, and
``python -m breachflow.workflow.migrations "what changes"`` drafts a new revision (see the README).
"""
