"""`PickList`: type to narrow a list (fuzzy), `↑`/`↓` move, `enter` picks — the field and operator pickers
of the segment builder. Keys stay in the input, so picking is typing plus `enter`."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Key
from textual.fuzzy import Matcher
from textual.message import Message
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class Choice:
    key: str
    label: str
    search: str = ""  # extra words the filter matches (symbols, synonyms)


#: Matches listed at most: the list shows a handful, and rebuilding it is what a keystroke costs.
MAX_SHOWN = 12


def rank(choices: list[Choice], text: str) -> list[Choice]:
    """What the list shows for `text`: fuzzy matches best first (an exact key first of all, then keys or
    labels it starts), at most MAX_SHOWN; every choice for no text."""
    text = text.strip()
    if not text:
        return list(choices)
    matcher = Matcher(text)
    scored = []
    for c in choices:
        score = matcher.match(f"{c.key} {c.label} {c.search}")
        if c.key.lower() == text.lower():
            score += 100  # an exact key wins
        elif c.key.lower().startswith(text.lower()) or c.label.lower().startswith(text.lower()):
            score += 10
        if score > 0:
            scored.append((score, c))
    scored.sort(key=lambda sc: -sc[0])
    return [c for _s, c in scored[:MAX_SHOWN]]


def shortest_search(choices: list[Choice], key: str) -> str:
    """The fewest characters that bring `key` to the top of the list — a prefix of the key or its label, or
    a fragment of the key (`prob` for `cn-1-problem`), as a person narrows a fuzzy list — what is typed
    before `enter`; at least one character."""
    target = next((c for c in choices if c.key == key), None)
    words = [key] + ([target.label] if target is not None else [])
    longest = max(len(w) for w in words)
    for n in range(1, longest + 1):
        candidates = [w[:n] for w in words] + [key[i:i + n] for i in range(1, len(key) - n + 1)]
        for text in candidates:
            if not text.strip():
                continue
            found = rank(choices, text)
            if found and found[0].key == key:
                return text
    return key


class PickList(Vertical):
    DEFAULT_CSS = """
    PickList { height: auto; }
    PickList > OptionList { height: auto; max-height: 8; }
    """

    @dataclass
    class Picked(Message):
        pick_list: PickList
        key: str

        @property
        def control(self) -> PickList:
            return self.pick_list

    @dataclass
    class NothingMatches(Message):
        pick_list: PickList
        text: str

        @property
        def control(self) -> PickList:
            return self.pick_list

    def __init__(self, choices: list[Choice], *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.choices = choices
        self.placeholder = placeholder
        self.shown: list[Choice] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self.placeholder)
        yield OptionList()

    def on_mount(self) -> None:
        self.refilter("")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def set_choices(self, choices: list[Choice], text: str = "") -> None:
        self.choices = choices
        self.input.value = text
        self.refilter(text)

    def refilter(self, text: str) -> None:
        shown = rank(self.choices, text)
        options = self.query_one(OptionList)
        if shown == self.shown and options.option_count == len(shown):
            if shown:  # the same list: rebuilding it would re-lay out the form for nothing
                options.highlighted = 0
            return
        self.shown = shown
        options.clear_options()
        options.add_options([Option(c.label, id=c.key) for c in self.shown])
        if self.shown:
            options.highlighted = 0

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refilter(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.pick()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.pick()

    def on_key(self, event: Key) -> None:
        if event.key in ("down", "up"):
            event.stop()
            options = self.query_one(OptionList)
            if options.option_count:
                current = options.highlighted or 0
                step = 1 if event.key == "down" else -1
                options.highlighted = max(0, min(options.option_count - 1, current + step))

    def pick(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None or not self.shown:
            self.post_message(self.NothingMatches(self, self.input.value.strip()))
            return
        choice = self.shown[options.highlighted]
        self.post_message(self.Picked(self, choice.key))

    def highlighted_key(self) -> str | None:
        """What `enter` would pick now."""
        options = self.query_one(OptionList)
        return self.shown[options.highlighted].key if options.highlighted is not None and self.shown else None

    def take(self) -> None:
        """What `enter` would pick, into the input, without the `Picked` message (a form's `ctrl+s` saves
        with it): the highlighted match of the search — the first choice, with no search — unless the text
        is a choice's key already."""
        text = self.input.value.strip()
        key = self.highlighted_key()
        if key is not None and not any(c.key == text for c in self.choices):
            self.input.value = key

    def focus(self, scroll_visible: bool = True) -> PickList:
        self.input.focus(scroll_visible)
        return self
