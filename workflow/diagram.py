"""The lifecycle as a Mermaid state diagram, generated from ``workflow.lifecycle.STEPS``."""

from __future__ import annotations

from pathlib import Path

from breachflow.workflow.lifecycle import INITIAL_STATE, STEPS, State, guard_name, transition_dict

DIAGRAM_FILE = "lifecycle.md"


def mermaid() -> str:
    """The Mermaid source: every step, guards and branch conditions on the arrows."""
    from transitions.extensions.diagrams import GraphMachine

    class _Drawn:
        """A fresh model: the diagram marks its (initial) state."""

    transitions = [
        transition_dict(step, guard_name(step.trigger), step.branch.__name__ if step.branch else None)
        for step in STEPS
    ]
    drawn = _Drawn()
    GraphMachine(
        model=drawn,
        states=[s.value for s in State],
        transitions=transitions,
        initial=INITIAL_STATE.value,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        show_state_attributes=False,
        # the library writes the title verbatim between "---" lines: make it front matter
        title="title: breachflow incident lifecycle",
    )
    return drawn.get_graph().draw(None)


def document() -> str:
    """The Markdown file committed under ``diagrams/``."""
    return (
        "# Incident lifecycle\n\n"
        "Generated from `workflow/lifecycle.py` by `breachflow diagram`; do not edit by hand.\n"
        "`has_<trigger>_fields` is the guard of that trigger (see `workflow/guards.py`); a name\n"
        "without it is a branch condition, `!` its negation.\n\n"
        f"```mermaid\n{mermaid().rstrip()}\n```\n"
    )


def write(directory: Path) -> Path:
    """Write the diagram into ``directory``; return the file written."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / DIAGRAM_FILE
    target.write_text(document(), encoding="utf-8")
    return target


def is_current(directory: Path) -> bool:
    """Whether the committed diagram equals what the definition produces now."""
    target = directory / DIAGRAM_FILE
    return target.is_file() and target.read_text(encoding="utf-8") == document()
