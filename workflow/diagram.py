"""The lifecycle drawn from ``workflow.lifecycle.STEPS``: as a Mermaid state diagram (committed under
``diagrams/``) and as an SVG picture with the current state marked (the incident page)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from breachflow.workflow.lifecycle import FINAL_STATES, INITIAL_STATE, STEPS, State, guard_name, transition_dict

DIAGRAM_FILE = "lifecycle.md"


def mermaid() -> str:
    """The Mermaid source: every step, guards and branch conditions on the arrows."""
    from transitions.extensions.diagrams import GraphMachine

    class _Drawn:
        """A fresh model: the diagram marks its (initial) state."""

        get_graph: Callable[..., Any]  # GraphMachine gives the model this method

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


# --- SVG ------------------------------------------------------------------------------------
# A vertical picture: the longest path from the initial state runs down the main column; every
# other state sits in a side column beside the state it is first reached from. Steps between
# neighbours are straight arrows, forward steps that skip a row curve round the left, steps back
# run round the right. Colours are presentation attributes (the pages' CSP forbids inline styles).

BOX_W, BOX_H, ROW, GAP = 230, 36, 76, 110
LEFT, TOP = 170, 54  # room for the labels of skipping steps; the start dot above the first row
INK, MUTED, PAPER, MARK = "#1b1f23", "#4a5560", "#ffffff", "#0b4f71"
CURRENT = ' data-current="true" aria-current="step"'


def _plain(name: str) -> str:
    return name.replace("_", " ")


def _main_path() -> list[State]:
    """The longest path of forward steps from the initial state (definition order breaks ties)."""
    def longest(state: State, seen: tuple[State, ...]) -> list[State]:
        best: list[State] = []
        for step in STEPS:
            if state in step.sources and step.dest not in seen:
                path = longest(step.dest, (*seen, step.dest))
                if len(path) > len(best):
                    best = path
        return [state, *best]

    return longest(INITIAL_STATE, (INITIAL_STATE,))


def layout() -> dict[State, tuple[int, int]]:
    """Each state's (column, row): the main path in column 0, the rest beside where they are first reached."""
    places = {state: (0, row) for row, state in enumerate(_main_path())}
    for step in STEPS:
        for source in step.sources:
            if step.dest not in places and source in places:
                places[step.dest] = (places[source][0] + 1, places[source][1])
    for state in State:  # unreachable states (none today) still appear, below the rest
        places.setdefault(state, (1, len(places)))
    return places


def _centre(place: tuple[int, int]) -> tuple[float, float]:
    column, row = place
    return LEFT + column * (BOX_W + GAP) + BOX_W / 2, TOP + row * ROW + BOX_H / 2


def _text(x: float, y: float, words: str, anchor: str = "middle", size: int = 12, fill: str = MUTED,
          weight: str = "normal") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}" '
            f'font-weight="{weight}">{escape(words)}</text>')


def _edges(places: dict[State, tuple[int, int]], current: State | None, words: Callable[[str], str],
           right: float) -> list[str]:
    drawn, backs, pairs = [], 0, {(s, step.dest) for step in STEPS for s in step.sources}
    for step in STEPS:
        for source in step.sources:
            (sc, sr), (dc, dr) = places[source], places[step.dest]
            (sx, sy), (dx, dy) = _centre(places[source]), _centre(places[step.dest])
            live = source == current
            colour, width, marker = (MARK, 2.5, "lc-live") if live else (MUTED, 1.5, "lc-arrow")
            label = words(step.trigger.value)
            if sr == dr:  # side by side: one line each way
                both = (step.dest, source) in pairs
                shift = (-7 if dc > sc else 7) if both else 0
                x1, x2 = (sx + BOX_W / 2, dx - BOX_W / 2) if dc > sc else (sx - BOX_W / 2, dx + BOX_W / 2)
                path = f"M{x1:.0f},{sy + shift:.0f} L{x2:.0f},{dy + shift:.0f}"
                at = ((x1 + x2) / 2, sy + shift + (-5 if shift <= 0 else 15))
                anchor = "middle"
            elif sc == dc and dr == sr + 1:  # the next row: straight down
                path = f"M{sx:.0f},{sy + BOX_H / 2:.0f} L{dx:.0f},{dy - BOX_H / 2:.0f}"
                at, anchor = (sx - 8, (sy + dy) / 2 + 4), "end"
            elif sc == dc and dr > sr:  # forward, skipping rows: round the left
                bulge = sx - BOX_W / 2 - 22 * (dr - sr)
                x0 = sx - BOX_W / 2
                path = (f"M{x0:.0f},{sy:.0f} C{bulge:.0f},{sy:.0f} {bulge:.0f},{dy:.0f} {x0:.0f},{dy:.0f}")
                at, anchor = (bulge + 0.25 * (x0 - bulge) - 4, (sy + dy) / 2 + 4), "end"
            elif dr < sr and sc == dc:  # back: round the right of everything, into the top of the target
                backs += 1
                lane, entry, top = right - 12 * backs, dx + BOX_W / 2 - 24 * backs, dy - BOX_H / 2
                path = (f"M{sx + BOX_W / 2:.0f},{sy:.0f} L{lane:.0f},{sy:.0f} L{lane:.0f},{top - 14 * backs:.0f} "
                        f"L{entry:.0f},{top - 14 * backs:.0f} L{entry:.0f},{top:.0f}")
                at, anchor = (lane - 6, (sy + dy) / 2), "end"
            else:  # anywhere else: a straight line
                path = f"M{sx:.0f},{sy + BOX_H / 2:.0f} L{dx:.0f},{dy - BOX_H / 2:.0f}"
                at, anchor = ((sx + dx) / 2 + 6, (sy + dy) / 2), "start"
            drawn.append(f'<g data-trigger="{step.trigger.value}" data-from="{source.value}">'
                         f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{width}" '
                         f'marker-end="url(#{marker})"/>'
                         + _text(*at, label, anchor, fill=MARK if live else MUTED, weight="bold" if live else "normal")
                         + "</g>")
    return drawn


def svg(current: State | str | None = None, *, words: Callable[[str], str] = _plain, title: str | None = None,
        description: str | None = None) -> str:
    """The lifecycle as an SVG picture, laid out the same way every time; ``current`` is filled and
    its outgoing steps drawn bold. ``words`` turns a state or trigger into what the reader reads;
    ``title`` and ``description`` name the picture and its current state for screen readers."""
    current = State(current) if current else None
    places = layout()
    columns = 1 + max(c for c, _ in places.values())
    rows = 1 + max(r for _, r in places.values())
    right = LEFT + columns * BOX_W + (columns - 1) * GAP + 90
    width, height = right + 10, TOP + rows * ROW
    title = title or "breachflow incident lifecycle" + (f"; current state: {words(current.value)}" if current else "")
    start_x, start_y = _centre(places[INITIAL_STATE])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lifecycle" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-labelledby="lc-title lc-desc">',
        f'<title id="lc-title">{escape(title)}</title>',
        f'<desc id="lc-desc">{escape(description or "")}</desc>',
        "<defs>",
        *(f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" '
          f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
          for name, colour in (("lc-arrow", MUTED), ("lc-live", MARK))),
        "</defs>",
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="{PAPER}"/>',
        f'<circle cx="{start_x:.0f}" cy="{TOP - 34}" r="6" fill="{INK}"/>',
        f'<path d="M{start_x:.0f},{TOP - 28} L{start_x:.0f},{TOP - 2}" stroke="{INK}" stroke-width="1.5" '
        'marker-end="url(#lc-arrow)"/>',
        *_edges(places, current, words, right),
    ]
    for state in State:
        cx, cy = _centre(places[state])
        marked = state == current
        rounded = BOX_H / 2 if state in FINAL_STATES else 6
        parts.append(
            f'<g data-state="{state.value}"{CURRENT if marked else ""}>'
            f'<rect x="{cx - BOX_W / 2:.0f}" y="{cy - BOX_H / 2:.0f}" width="{BOX_W}" height="{BOX_H}" '
            f'rx="{rounded:.0f}" fill="{MARK if marked else PAPER}" stroke="{MARK if marked else INK}" '
            f'stroke-width="{3 if marked else 1.5}"/>'
            + _text(cx, cy + 5, words(state.value), size=14, fill=PAPER if marked else INK,
                    weight="bold" if marked else "normal")
            + "</g>")
    parts.append("</svg>")
    return "\n".join(parts)
