"""Versioned two-stage prompts for VLM preference labels (RL-VLM-F, ICML 2024) and the parser of their replies.

Stage 1 (analysis) shows both images and asks what each shows and whether they differ in achieving the goal.
Stage 2 (labelling) gets the stage-1 text (not the images, as in RL-VLM-F) and asks for one line: ``0`` if the goal
is better achieved in Image 1, ``1`` if in Image 2, ``-1`` if unsure or no difference. Anything else parses to -1.

A template is identified by its ``version``; the version goes into every label record and into the cache key, so
changing a prompt's wording means adding a new template under a new version, never editing an old one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

LABELS = (0, 1, -1)


@dataclass(frozen=True)
class PromptTemplate:
    """The texts of one prompt version. ``{goal}`` and ``{analysis}`` are filled in by :meth:`stage1`/``stage2``."""

    version: str
    intro: str
    image_captions: tuple[str, str]
    analysis: str
    labelling: str

    def stage1(self, goal: str) -> str:
        return self.analysis.format(goal=goal)

    def stage2(self, goal: str, analysis: str) -> str:
        return self.labelling.format(goal=goal, questions=self.stage1(goal), analysis=analysis)


RLVLMF_V1 = PromptTemplate(
    version="rlvlmf-v1",
    intro="Consider the following two images:",
    image_captions=("Image 1:", "Image 2:"),
    analysis=("1. What is shown in Image 1?\n"
              "2. What is shown in Image 2?\n"
              "3. The goal is: {goal}. Is there any difference between Image 1 and Image 2 in terms of achieving "
              "the goal?"),
    labelling=("Based on the text below to the questions:\n{questions}\n\n{analysis}\n\n"
               "Is the goal better achieved in Image 1 or Image 2?\n"
               "Reply a single line of 0 if the goal is better achieved in Image 1, or 1 if it is better achieved in "
               "Image 2.\nReply -1 if the text is unsure or there is no difference."),
)

PROMPTS: dict[str, PromptTemplate] = {RLVLMF_V1.version: RLVLMF_V1}
PROMPT_VERSION = RLVLMF_V1.version  # the default


def get_prompt(version: str) -> PromptTemplate:
    """The template called ``version``; an unknown one fails listing the known ones."""
    if version not in PROMPTS:
        raise KeyError(f"unknown prompt version {version!r}; known: {sorted(PROMPTS)}")
    return PROMPTS[version]


_DECORATION = re.compile(r"^[\s`*_\"'>#:.\[\](){}]+|[\s`*_\"'.\[\](){}]+$")
_LABEL_LINE = re.compile(r"^(?:label|answer|output)?\s*[:=]?\s*(-?[01])$", re.IGNORECASE)


def parse_label(text: str | None) -> tuple[int, str]:
    """``(label, reason)`` for a stage-2 reply.

    Accepted: a reply whose first non-empty line is ``0``, ``1`` or ``-1`` (markdown/quote decoration and a
    ``label:``/``answer:`` prefix are tolerated). Reasons: ``ok`` (0/1), ``unsure`` (the model said -1),
    ``empty`` (no text) and ``unparseable`` (anything else, which is -1 as in RL-VLM-F).
    """
    if text is None or not text.strip():
        return -1, "empty"
    first = next(line for line in text.strip().splitlines() if line.strip())
    match = _LABEL_LINE.match(_DECORATION.sub("", first.strip()))
    if not match:
        return -1, "unparseable"
    label = int(match.group(1))
    return label, "ok" if label in (0, 1) else "unsure"


__all__ = ["LABELS", "PROMPTS", "PROMPT_VERSION", "PromptTemplate", "RLVLMF_V1", "get_prompt", "parse_label"]
