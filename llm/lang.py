"""Which language to write in: the meeting's (the transcript says), or the question's
(guessed here between the page's languages, English and French, from function words)."""

from __future__ import annotations

import re

NAMES = {
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "zh": "Chinese", "ja": "Japanese", "ru": "Russian",
}  # fmt: skip

_FRENCH_WORDS = (
    "le la les un une des du de et est sont qui que quoi quel quelle quels quelles où"
    " quand comment pourquoi combien a ont été dans pour sur avec pas ne ce cette ces"
    " il elle ils elles nous vous on au aux son sa ses leur"
)
_ENGLISH_WORDS = (
    "the a an and is are was were who what which where when how why did does do of in"
    " on for with not this that these those he she they we you it to by from"
)
_FRENCH = set(_FRENCH_WORDS.split())
_ENGLISH = set(_ENGLISH_WORDS.split())
_WORD = re.compile(r"[a-zàâçéèêëîïôûùüÿœæ']+")


def guess_language(text: str) -> str:
    """ "fr" or "en": French when its function words (or accents) outnumber English ones."""
    words = _WORD.findall(text.lower())
    fr = sum(w in _FRENCH or w.startswith(("l'", "d'", "qu'")) for w in words)
    fr += sum(ch in "àâçéèêëîïôûùœ" for ch in text.lower()) > 0
    en = sum(w in _ENGLISH for w in words)
    return "fr" if fr > en else "en"


def language_name(code: str | None) -> str:
    return NAMES.get((code or "en").lower()[:2], "the language of the transcript")
