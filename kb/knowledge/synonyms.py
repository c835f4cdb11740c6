"""synonymes.yml: the editors' groups of equivalent words, each fault at its line."""

from __future__ import annotations

from pathlib import Path

import yaml

from kb.knowledge.problems import Problem
from kb.knowledge.yaml_files import read_text, reader_problem, yaml_problem


def load_synonyms(path: Path, problems: list[Problem]) -> list[tuple[str, ...]]:
    text = read_text(path, problems)
    if text is None:
        return []
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        problems.append(yaml_problem(exc, path, 1, text))
        return []
    except yaml.reader.ReaderError as exc:
        problems.append(reader_problem(exc, text, path, 1))
        return []
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        problems.append(
            Problem(
                path,
                node.start_mark.line + 1,
                "liste attendue : une ligne « - [mot, synonyme, …] » par groupe",
            )
        )
        return []
    groups: list[tuple[str, ...]] = []
    for item in node.value:
        line = item.start_mark.line + 1
        words: list[str] = []
        if isinstance(item, yaml.SequenceNode):
            values = [v for v in item.value if isinstance(v, yaml.ScalarNode)]
            if len(values) != len(item.value):
                problems.append(Problem(path, line, "un groupe ne contient que des mots"))
                continue
            words = [str(v.value).strip() for v in values]
        elif isinstance(item, yaml.ScalarNode):
            words = [w.strip() for w in str(item.value).split(",")]
        else:
            problems.append(Problem(path, line, "groupe attendu : « - [mot, synonyme, …] »"))
            continue
        words = [w for w in words if w]
        if len(words) < 2:
            problems.append(Problem(path, line, "un groupe de synonymes compte au moins deux mots"))
            continue
        groups.append(tuple(words))
    return groups
