"""Messages about bad input: their exit code, and the values they name.

A value in a message (params.yaml's, a data file's, an MLflow run's) is shown cut to a
readable length: a value can be huge (a YAML alias expanded 9^7 times, a megabyte of
string, a CSV cell holding a whole file), and reprlib stops after a few levels and items,
so the cost does not grow with the value.
"""

import reprlib

EXIT_BAD_INPUT = 2  # bad params or input files: one line per problem, then this code
LIMIT = 80  # characters of a value in a message


def _repr() -> reprlib.Repr:
    r = reprlib.Repr()  # Python 3.11 takes no keyword arguments here
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 6, 6, 6, 6
    r.maxstring = r.maxother = r.maxlong = LIMIT
    return r


_REPR = _repr()


def shown(value: object, limit: int = LIMIT) -> str:
    """repr(value), at most `limit` characters: nested containers show their first items
    and `...`, a long text its start and end; anything longer is cut with `...`."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cut(text: str, limit: int = 200) -> str:
    """`text` on one line, at most `limit` characters (a message that quotes a whole file
    stays readable)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
