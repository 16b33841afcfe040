"""The Textual app shell: App, styles, widgets, keymap, command palette providers."""
