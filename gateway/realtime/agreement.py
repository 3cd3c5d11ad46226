"""LocalAgreement-2 (Machacek et al., whisper_streaming): stable partial text from re-transcriptions.

The growing utterance is transcribed again and again; a word is *committed* (sent to the client as
a delta) only once two consecutive hypotheses agree on it, as part of their common prefix. Committed
text only ever grows, so the client's partial text never flickers or shrinks; the final transcript
of the utterance (a separate, full transcription) supersedes it.

Words are compared case-folded and without surrounding punctuation: "old." (the audio ended there)
and "old" (it went on) agree. Sentence-final punctuation includes the Persian/Arabic question mark
"؟" and the Urdu full stop "۔"; `sentence_ends()` finds sentence boundaries in committed text so a
caller can freeze finished sentences and stop re-transcribing their audio.

Pure Python, no I/O.
"""

from __future__ import annotations

import difflib
import unicodedata

SENTENCE_END = (".", "!", "?", "؟", "۔", "…", "。", "！", "？")
_EDGE = "\"'()[]{}«»“”‘’„‚‹›،؛,;:-–—…" + "".join(SENTENCE_END)


def key(word: str) -> str:
    """The comparison form of a word: NFC, case-folded, surrounding punctuation stripped."""
    stripped = unicodedata.normalize("NFC", word).strip().strip(_EDGE).casefold()
    return stripped or word.strip()


def _letters(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def ends_sentence(word: str) -> bool:
    return word.rstrip("\"'”’»)]").endswith(SENTENCE_END)


def words_of(text: str) -> list[str]:
    return text.split()


def sentence_ends(words: list[str]) -> list[int]:
    """Indices i such that words[:i] is a run of whole sentences."""
    return [i + 1 for i, word in enumerate(words) if ends_sentence(word)]


class LocalAgreement:
    """LocalAgreement-2 over word hypotheses of one utterance (or of its not yet frozen part)."""

    def __init__(self) -> None:
        self.committed: list[str] = []
        self.previous: list[str] | None = None

    @property
    def text(self) -> str:
        return " ".join(self.committed)

    def insert(self, hypothesis: list[str]) -> list[str]:
        """Feed the newest hypothesis (all words of the audio so far); return the newly committed words."""
        previous, self.previous = self.previous, list(hypothesis)
        if previous is None:
            return []
        agreed = 0
        for a, b in zip(previous, hypothesis):
            if key(a) != key(b):
                break
            agreed += 1
        start = self._after_committed(hypothesis)
        if agreed <= start:
            return []
        new = hypothesis[start:agreed]
        self.committed.extend(new)
        return new

    def _after_committed(self, hypothesis: list[str]) -> int:
        """Where, in `hypothesis`, the committed words end (they may be split or merged differently:
        "52-year-old" vs "52 year old")."""
        n = len(self.committed)
        if n == 0:
            return 0
        committed_keys = [key(w) for w in self.committed]
        hyp_keys = [key(w) for w in hypothesis]
        if hyp_keys[:n] == committed_keys:
            return n
        matcher = difflib.SequenceMatcher(None, committed_keys, hyp_keys, autojunk=False)
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        if not blocks:
            return len(hypothesis)  # nothing in common: commit nothing more from this hypothesis
        last = blocks[-1]
        at = last.b + last.size
        rest = n - (last.a + last.size)  # committed words after the last anchor, spelled differently
        if rest == 0:
            return at
        tail = "".join(_letters(k) for k in committed_keys[-rest:])
        spelled = ""
        for end in range(at, len(hypothesis)):
            spelled += _letters(hyp_keys[end])
            if spelled == tail:
                return end + 1
            if len(spelled) >= len(tail):
                break
        return min(len(hypothesis), at + rest)

    def freeze(self, count: int) -> list[str]:
        """Drop the first `count` committed words (finished sentences whose audio is cut off): later
        hypotheses start after them. Returns the dropped words."""
        count = min(count, len(self.committed))
        frozen, self.committed = self.committed[:count], self.committed[count:]
        if self.previous is not None:
            self.previous = self.previous[count:]
        return frozen


def finished_sentences(committed: list[str], segments: list[tuple[float, str]]) -> tuple[int, float]:
    """How much of a hypothesis can be frozen: (words, end seconds) of its longest run of leading
    segments (Whisper's, as (end, text)) that are all committed and end a sentence; never the last
    segment, whose end is still moving. (0, 0.0) when none."""
    count, cut, seen = 0, 0.0, 0
    hypothesis = [w for _, text in segments for w in text.split()]
    if not committed or [key(w) for w in hypothesis[: len(committed)]] != [key(w) for w in committed]:
        return 0, 0.0
    for end, text in segments[:-1]:
        seen += len(text.split())
        if seen > len(committed):
            break
        if ends_sentence(text.strip()):
            count, cut = seen, end
    return count, cut


def join(words: list[str], after: str = "") -> str:
    """Delta text for `words` appended to already sent text `after` (a space between words)."""
    text = " ".join(words)
    return (" " + text) if after and text else text
