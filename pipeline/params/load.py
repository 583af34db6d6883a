"""Reading params.yaml the way DVC does, and saying what is wrong with it in one line
per problem: the key, the value and what is allowed (values shown cut to a readable
length: pipeline.files.message)."""

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal, NoReturn, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pipeline.fields import Section
from pipeline.files.message import EXIT_BAD_INPUT, cut, shown
from pipeline.params.schema import Params

MAX_VALUES = 100_000  # in the document, aliases expanded: gradlab's params hold ~300
MAX_PROBLEMS = 20  # lines of problems printed; the rest are counted


class ParamsError(ValueError):
    """Params failed validation; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_yaml(path: Path) -> object:
    """The YAML document, parsed the way DVC parses it (ruamel, YAML 1.2: 1e-3 is a float)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError([f"{path}: file not found"]) from None
    except MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else "?"
        raise ParamsError([f"{path}:{line}: YAML syntax error: {e.problem}"]) from None
    except YAMLError as e:
        raise ParamsError([f"{path}: YAML error: {cut(str(e))}"]) from None
    if _size(data, MAX_VALUES) > MAX_VALUES:
        raise ParamsError(
            [
                f"{path}: more than {MAX_VALUES:,} values once its aliases (*name) are "
                "expanded, where gradlab's params hold a few hundred: a YAML bomb, or a "
                "list pasted by mistake"
            ]
        )
    return data


def _size(data: object, limit: int) -> int:
    """How many values `data` holds, counting each use of a shared (aliased) node, up to
    just past `limit`: a YAML bomb's 9^9 leaves cost no more than `limit` steps."""
    count, todo = 0, [data]
    while todo and count <= limit:
        node = todo.pop()
        count += 1
        if isinstance(node, dict):
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return count


def _variants(annotation: object) -> dict[str, type[BaseModel]]:
    """{tag: model} of a discriminated union of sections (tag: the value of each member's
    first Literal field, e.g. generate's `preset`), or {} for anything else."""
    if get_origin(annotation) is Annotated:  # a union inside a mapping keeps its Field()
        annotation = get_args(annotation)[0]
    members = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, Section)]
    tags: dict[str, type[BaseModel]] = {}
    for model in members:
        for field in model.model_fields.values():
            if get_origin(field.annotation) is Literal:
                tags[get_args(field.annotation)[0]] = model
                break
    return tags


def _tag(variants: dict[str, type[BaseModel]]) -> str:
    """The name of the field that tells a union's members apart."""
    model = next(iter(variants.values()))
    return next(k for k, f in model.model_fields.items() if get_origin(f.annotation) is Literal)


def _walk(loc: tuple[str | int, ...]) -> tuple[list[str], type[BaseModel] | None, str | None]:
    """`loc` as the user writes it (without a union's tag), the section it ends in (None
    past a section) and the union tag it went through, if any."""
    model: type[BaseModel] | None = Params
    names: list[str] = []
    tag = None
    parts = list(loc)
    while parts:
        part = str(parts.pop(0))
        names.append(part)
        if model is None or part not in model.model_fields:
            return names + [str(p) for p in parts], None, tag
        annotation = model.model_fields[part].annotation
        if get_origin(annotation) is dict and parts:  # a mapping: its key, then its value
            names.append(str(parts.pop(0)))
            annotation = get_args(annotation)[1]
        if variants := _variants(annotation):
            if parts and str(parts[0]) in variants:  # pydantic puts the tag into loc
                tag = str(parts.pop(0))
                model = variants[tag]
            else:
                model = None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            model = None
    return names, model, tag


def _describe(error: dict[str, object], path: Path) -> str:
    """One line naming the key, the value and what is allowed."""
    parts: tuple[str | int, ...] = error["loc"]  # type: ignore[assignment]
    names, _, tag = _walk(parts)
    loc = ".".join(names) or "(top level)"
    kind, msg = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return f"{path}: {loc}: missing (required)"
    if kind == "extra_forbidden":
        _, section, _ = _walk(parts[:-1])
        keys = list(section.model_fields) if section else []
        under = f" under {_tag({tag: section})}: {tag}" if tag and section else ""
        value = shown(error["input"])
        return f"{path}: {loc} = {value}: unknown key{under}; allowed: {', '.join(keys)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        variants = _variants(_annotation(parts))
        key = _tag(variants)
        given = error["input"]
        if not isinstance(given, dict) or key not in given:
            return f"{path}: {loc}.{key}: missing (required); one of {', '.join(variants)}"
        return f"{path}: {loc}.{key} = {shown(given[key])}: must be one of {', '.join(variants)}"
    if kind == "value_error" and "input" in error and isinstance(error["input"], dict):
        return f"{path}: {loc + '.' if names else ''}{msg}"  # a cross-field check names its key
    if kind == "finite_number":
        msg = "must be a finite number"
    return f"{path}: {loc} = {shown(error['input'])}: {cut(msg)}"


def _annotation(loc: tuple[str | int, ...]) -> object:
    """The type at `loc`, a path of section names and mapping keys."""
    annotation: object = Params
    for part in loc:
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            annotation = annotation.model_fields[str(part)].annotation  # type: ignore[attr-defined]
    return annotation


def parse(data: object, path: Path = Path("params.yaml")) -> Params:
    """Validated params, or ParamsError listing every problem at once."""
    try:
        return Params.model_validate(data)
    except ValidationError as e:
        lines = list(dict.fromkeys(_describe(err, path) for err in e.errors()))  # type: ignore[arg-type]
        if len(lines) > MAX_PROBLEMS:
            lines[MAX_PROBLEMS:] = [f"{path}: and {len(lines) - MAX_PROBLEMS:,} more problems"]
        raise ParamsError(lines) from None


def load(path: Path) -> Params:
    return parse(read_yaml(path), path)


def edited_since_commit(path: Path) -> bool:
    """True when `path` differs from its last commit (e.g. left edited by a failed
    `dvc exp run -S`); False when it does not, or git cannot tell (no git, no repository)."""
    try:
        run = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        return False
    return run.returncode == 0 and bool(run.stdout.strip())


def load_or_exit(path: Path) -> Params:
    """Params from `path`; on any problem print one line each to stderr and exit 2,
    saying how to restore params.yaml when it differs from its last commit."""
    try:
        return load(path)
    except ParamsError as e:
        refuse([f"error: {line}" for line in e.problems], path)


def refuse(lines: list[str], path: Path) -> NoReturn:
    """Print `lines` to stderr, and how to restore `path` if it differs from its last
    commit; exit 2."""
    for line in lines:
        print(line, file=sys.stderr)
    if edited_since_commit(path):
        print(
            f"note: {path} differs from its last commit (`dvc exp run -S` leaves its "
            f"edits there, even when the run fails or is stopped, and may stage them): "
            f"`git diff HEAD -- {path.name}` shows them, `git checkout HEAD -- "
            f"{path.name}` restores the committed values",
            file=sys.stderr,
        )
    raise SystemExit(EXIT_BAD_INPUT) from None
