"""Reading the contract files: TOML in, one strict validator, one-line errors out.

Every contract file (runbook.toml, its dialects, targets.toml) is validated by pydantic
models built from ``Table``: every key known, every value of its type, every rule of a
section in the section's own module. Nothing is coerced — ``"5"`` is not a number, ``true``
is not an integer, a quoted date is not a date — and whatever is wrong costs the operator
one line that names the file and the dotted key at fault::

    runbook.toml: http.read_timeout_s: must be a number, got str '5'

``validate`` is the one adapter from pydantic's ``ValidationError`` to that line: the first
error, where pydantic found it (``loc``), and our words. The words are ours because the
checks raise them (``fail``); pydantic's own error kinds only say a key is missing.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError


class ConfigError(Exception):
    """A contract file (or the environment it points to) is unusable. Exit code 4."""


def load_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


# --- what a check raises ------------------------------------------------------------------

_ERROR = "contract"


def fail(message: str, at: str | int = "") -> PydanticCustomError:
    """The error a validator raises: ``message`` about the value being validated, or about
    its key ``at`` (a key name, ``"[2]"``, or a dotted path below it)."""
    return PydanticCustomError(_ERROR, "{message}", {"message": message, "at": at})


def join(prefix: str, key: str | int) -> str:
    """``health`` + ``rate`` → ``health.rate``; ``jobs`` + ``2`` or ``"[2]"`` → ``jobs[2]``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if not prefix or not key:
        return prefix or key
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


def within(at: str | int, rule: Callable[[Any], Any], value: Any) -> Any:
    """``rule(value)`` for the value at key ``at`` below the one being validated: its
    failure names that key."""
    try:
        return rule(value)
    except PydanticCustomError as exc:
        if exc.type != _ERROR:
            raise
        ctx = exc.context or {}
        raise fail(str(ctx["message"]), at=join(str(at) if isinstance(at, str) else f"[{at}]", ctx["at"])) from None


def got(value: Any) -> str:
    """``got str '5'``: the type and the value, as a message quotes what it refused."""
    return f"got {type(value).__name__} {value!r}"


# --- the adapter: pydantic's errors as one line -------------------------------------------

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, path: Path | str, prefix: str = "", *, context: Any = None) -> M:
    """``model`` validated from ``data`` (the table at ``prefix`` of the file ``path``);
    a ``ConfigError`` naming the file and the key of the first problem otherwise."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(error_line(path, prefix, exc)) from None


def error_line(path: Path | str, prefix: str, exc: ValidationError) -> str:
    key, message = located(exc)
    return f"{path}: {join(prefix, key) or '(top level)'}: {message}"


def located(exc: ValidationError) -> tuple[str, str]:
    """The first problem: the dotted key it is about (relative to what was validated), and
    what is wrong there."""
    error = exc.errors(include_url=False)[0]
    key = ""
    for step in error["loc"]:
        if step != "[key]":  # a dict key's own error: the key is the previous step
            key = join(key, step)
    ctx = error.get("ctx") or {}
    if error["type"] == _ERROR:
        return join(key, ctx["at"]), str(ctx["message"])
    if error["type"] == "missing":
        return key, "missing required key"
    if error["type"] == "extra_forbidden":
        return key, "unknown key"
    return key, error["msg"]  # pragma: no cover - every check of ours raises fail(); a safety net


def within_table(at: str | int, model: type[M], value: Any, *, context: Any = None) -> M:
    """``model`` validated from the value at key ``at`` below the one being validated, when
    a rule (not the field's type) decides when it is read."""
    try:
        return model.model_validate(value, context=context)
    except ValidationError as exc:
        key, message = located(exc)
        raise fail(message, at=join(str(at) if isinstance(at, str) else f"[{at}]", key)) from None


# --- tables ---------------------------------------------------------------------------------


class Table(BaseModel):
    """A TOML table of a contract file. Fields are its keys (``alias`` where a key is not a
    Python name); a field with a default is optional. A table's own rules are its
    ``model_validator(mode="after")`` methods.

    The file hears about its table's shape before its values, as an operator fixes it: a
    value that is not a table; then an unknown key (naming the allowed ones); then, key by
    key in ``KEY_ORDER`` (default: the fields'), a missing key or a value of the wrong type
    (``of_type``, ``shape``, a table); only then the values, in the fields' order.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True,
                              defer_build=True)  # built at first validation: a run never pays for the tables it does not read

    # How a value that is not a table is refused: {got} is ``got str 'x'``, {kind} ``str``.
    # A table in a list, or read below another table's own reader, says "must be a table".
    NOT_A_TABLE: ClassVar[str] = "must be a table, {got}"
    # The order keys are looked for, where the fields are in the order their values are
    # checked (empty: the fields' order).
    KEY_ORDER: ClassVar[tuple[str, ...]] = ()
    # False: a missing key or a wrong type is found with the values, field by field (a table
    # whose reader checks each key as it reads it).
    SHAPE_FIRST: ClassVar[bool] = True

    _written: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _table(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if not isinstance(data, dict):
            raise fail(cls.NOT_A_TABLE.format(got=got(data), kind=type(data).__name__))
        data = cls.first(data)
        allowed = cls.keys()
        for key in data:
            if key not in allowed:
                raise fail(f"unknown key (allowed: {', '.join(sorted(allowed))})", at=key)
        if cls.SHAPE_FIRST:
            for key, required, shape_of in _shapes(cls):
                if key not in data:
                    if required:
                        raise fail("missing required key", at=key)
                elif shape_of is not None:
                    within(key, shape_of, data[key])
        table = handler(data)
        table._written = tuple(data)
        return table

    @classmethod
    def first(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A check that must come before the unknown keys' (raise ``fail``); the data."""
        return data

    @classmethod
    def keys(cls) -> set[str]:
        return {f.alias or name for name, f in cls.model_fields.items()}

    def given(self, key: str) -> bool:
        """Whether the file wrote ``key`` (an optional key left out takes its default)."""
        return key in self._written

    @property
    def written(self) -> tuple[str, ...]:
        """The keys as the file wrote them, in its order."""
        return self._written


@functools.cache
def _shapes(table: type[Table]) -> tuple[tuple[str, bool, Callable[[Any], Any] | None], ...]:
    """A table's (key, required, its type check), in the order its keys are looked for."""
    fields = [(f.alias or name, f) for name, f in table.model_fields.items()]
    order = {key: i for i, key in enumerate(table.KEY_ORDER)}
    fields.sort(key=lambda kf: order.get(kf[0], len(order)))
    return tuple((key, f.is_required(), _shape_check(f.annotation, f.metadata)) for key, f in fields)


def _shape_check(annotation: Any, metadata: list[Any]) -> Callable[[Any], Any] | None:
    """A field's type check (of_type / shape, or a table's), to run before any value's."""
    for item in metadata:
        func = getattr(item, "func", None)
        if getattr(func, "shape", False):
            return func  # type: ignore[no-any-return]
    args = get_args(annotation)
    if get_origin(annotation) in (Union, UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return _shape_check(inner, list(getattr(inner, "__metadata__", ())))
    if isinstance(annotation, type) and issubclass(annotation, Table):
        table = annotation

        def is_table(value: Any) -> Any:
            if not isinstance(value, dict):
                raise fail(table.NOT_A_TABLE.format(got=got(value), kind=type(value).__name__))
            return value

        return is_table
    return None


# --- value types: each checks what the file wrote, as written -------------------------------

_TYPE_NAMES = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list",
               dict: "a table"}


def typename(types: tuple[type, ...]) -> str:
    if set(types) == {int, float}:
        return "a number"
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def of_type(*types: type, what: str | None = None) -> PlainValidator:
    """Accept a value of ``types`` as it is (never a bool where a number is meant: bool is a
    subclass of int), else "must be <what>, got <type> <value>"."""

    def check(value: Any) -> Any:
        if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
            return value
        raise fail(f"must be {what or typename(types)}, {got(value)}")

    check.shape = True  # type: ignore[attr-defined]  # Table checks it with the keys
    return PlainValidator(check)


def shape(*types: type, what: str | None = None) -> BeforeValidator:
    """``of_type`` for a container whose inside pydantic then reads (a list of tables)."""
    plain = of_type(*types, what=what).func
    return BeforeValidator(plain)  # type: ignore[arg-type]


Str = Annotated[str, of_type(str)]
Bool = Annotated[bool, of_type(bool)]
Int = Annotated[int, of_type(int)]
# An integer or a float, kept as written (a message quotes 0, not 0.0).
Number = Annotated[float, of_type(int, float)]
AnyList = Annotated[list[Any], of_type(list)]
AnyTable = Annotated[dict[str, Any], of_type(dict)]


def check(rule: Callable[[Any], Any]) -> AfterValidator:
    """A rule on a value already of its type; it raises ``fail`` or returns the value."""
    return AfterValidator(rule)


def str_list(value: list[Any], *, nonempty: bool = True) -> list[str]:
    """Non-empty strings; the list itself must not be empty unless ``nonempty`` is false."""
    if nonempty and not value:
        raise fail("must not be empty")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise fail(f"must be a non-empty string, got {item!r}", at=i)
    return list(value)


def unique(items: list[Any], key: str) -> list[Any]:
    """``items`` with no two of the same ``key`` attribute; the second of a pair fails,
    naming its ``[i].key``."""
    seen: set[Any] = set()
    for i, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            raise fail(f"{value!r} is listed twice", at=f"[{i}].{key}")
        seen.add(value)
    return items


def positive(value: float) -> float:
    if value <= 0:
        raise fail(f"must be greater than 0, got {value!r}")
    return value


def one_of(allowed: Iterable[str], value: str, *, quote: bool = False) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        names = ", ".join(repr(a) if quote else a for a in allowed)
        raise fail(f"must be one of {names}, got {value!r}")
    return value


StrList = Annotated[list[str], of_type(list), check(str_list)]
OptStrList = Annotated[list[str], of_type(list), check(lambda v: str_list(v, nonempty=False))]
