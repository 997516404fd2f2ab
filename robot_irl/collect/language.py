"""Language goals: which object an instruction asks for, and the instruction that asks for an object.

Pure (no simulator): the robosuite driver uses it to decide success, the scripted operator to pick its target and
the adversary to write a new goal mid-episode. Only Lift is language-conditioned: "lift the red cube" and "pick up
the yellow ball" name the object to lift; the verb does not matter, the object does.

An instruction is matched against each object's phrasings (whole words, case-insensitive). When phrasings overlap
("blue cube" contains "cube") the longest match wins, so "lift the blue cube" means the blue box, not the red cube.
An instruction naming no known object, or two different objects, is an error that lists the phrasings understood.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

#: tasks whose goal is chosen by the instruction
LANGUAGE_TASKS = ("lift",)

#: object -> phrasings (the first is the canonical one, used by :func:`instruction_for`)
OBJECT_PHRASES: dict[str, tuple[str, ...]] = {
    "cube": ("red cube", "red block", "cube", "block", "red"),
    "distractor_box": ("blue box", "blue cube", "blue block", "box", "blue"),
    "distractor_ball": ("yellow ball", "yellow sphere", "ball", "sphere", "yellow"),
    "distractor_cylinder": ("green cylinder", "green can", "cylinder", "can", "green"),
}

#: the verb of each task's generated instructions
VERBS = {"lift": "lift"}


class InstructionError(ValueError):
    """An instruction that names no known object, or more than one."""


def _check_task(task: str) -> None:
    if task not in LANGUAGE_TASKS:
        raise InstructionError(f"task {task!r} is not language-conditioned; only {list(LANGUAGE_TASKS)} are")


def known_phrasings(known_objects: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The phrasings of ``known_objects`` (objects without phrasings are matched by their own name)."""
    return {obj: OBJECT_PHRASES.get(obj, (obj.replace("_", " "),)) for obj in known_objects}


def _matches(text: str, phrases: dict[str, tuple[str, ...]]) -> list[tuple[int, int, str]]:
    """Every (start, end, object) where a phrasing occurs as whole words in ``text``."""
    found = []
    for obj, options in phrases.items():
        for phrase in options:
            pattern = r"\b" + r"\s+".join(map(re.escape, phrase.lower().split())) + r"\b"
            found.extend((m.start(), m.end(), obj) for m in re.finditer(pattern, text))
    return found


def _maximal(matches: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop matches lying inside a longer one ("cube" inside "blue cube")."""
    return [m for m in matches
            if not any(o[0] <= m[0] and m[1] <= o[1] and (o[1] - o[0]) > (m[1] - m[0]) for o in matches)]


def goal_object(task: str, instruction: str, known_objects: Iterable[str]) -> str:
    """The object ``instruction`` asks ``task`` to act on, among ``known_objects``.

    >>> goal_object("lift", "lift the blue box", ["cube", "distractor_box"])
    'distractor_box'
    """
    _check_task(task)
    phrases = known_phrasings(known_objects)
    if not phrases:
        raise InstructionError(f"no objects to match instruction {instruction!r} against")
    text = " ".join(str(instruction).lower().split())
    objects = sorted({obj for _, _, obj in _maximal(_matches(text, phrases))})
    if len(objects) == 1:
        return objects[0]
    understood = "; ".join(f"{obj}: {', '.join(repr(p) for p in options)}" for obj, options in phrases.items())
    problem = "names no known object" if not objects else f"names several objects {objects}"
    raise InstructionError(f"{task} instruction {instruction!r} {problem}; known phrasings: {understood}")


def instruction_for(task: str, obj: str) -> str:
    """The canonical instruction asking ``task`` to act on ``obj`` ("lift the blue box")."""
    _check_task(task)
    if obj not in OBJECT_PHRASES:
        raise InstructionError(f"no phrasing for object {obj!r}; known objects: {sorted(OBJECT_PHRASES)}")
    return f"{VERBS[task]} the {OBJECT_PHRASES[obj][0]}"
