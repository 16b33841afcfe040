"""One module (+ .tcss) per Textual screen."""
