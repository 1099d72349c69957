"""A character tokenizer for the Part 5 tests: bytes 0..126 are themselves, 127 is the end-of-text token."""

from llmscratch.instructions import END


class Chars:
    """Encodes each character as its code point (capped at 126); id 127 is `END`."""

    special_tokens = {END: 127}
    vocab_size = 128

    def encode(self, text):
        return [min(ord(c), 126) for c in text]

    def decode(self, ids):
        return "".join(chr(i) if i < 127 else END for i in ids)
