"""Numbers past a float, kept to standard JSON (RFC 8259) wherever imgbatch reads or writes it.

A service may price a task at `1e400`: valid JSON, but Python's json reads it as the float
`inf`, and writes that back as `Infinity`, which is not JSON (strict parsers and jq refuse the
whole document). The representation chosen, and why:

- A number the service wrote is kept as that number. A literal past the largest float is
  read as the integer of the same value (`1e400` is exactly 10**400), which is what json
  already does for an integer literal of that size: the ledger then holds the price exactly,
  writes it as standard JSON, and reads it back unchanged; spending treats it as more than
  any cap (runner/estimate.number), as before. A literal with more digits than Python
  converts (4,300) is as unreadable as such an integer literal is.
- `NaN` and `Infinity` are not JSON: an answer holding them is no usable answer, like one
  that is not JSON at all.
- A ledger line an older imgbatch wrote with `Infinity` (the price past a float it had read)
  has lost the service's number: it is read as 10**309, the first power of ten past a float,
  so it stays a price past any cap and is written back as standard JSON; `NaN` is read as
  null (not a number, so no price).
- A figure imgbatch computes from such prices (an estimate, a total at float precision) that
  is past the largest float has no float value: the JSON documents write it as null
  (`figure`), not as a made-up number. Totals of what the service reported are added
  exactly (`add`), so they stay numbers.

Writers pass allow_nan=False, so a non-finite float that gets through fails loudly.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

# Python converts integers of at most this many digits to and from text (sys.int_info).
_MAX_DIGITS = 4300
# What an older imgbatch's `Infinity` is read as (see above).
PAST_FLOAT = 10**309


def exact_float(text: str) -> float | int:
    """json's parse_float: the float, or the same number as an integer when no float holds it."""
    value = float(text)
    if math.isfinite(value):
        return value
    from decimal import Decimal  # ~2 ms to import, and only a number past a float needs it

    try:
        number = Decimal(text)
    except ArithmeticError:  # an exponent past what decimal holds: more digits than any
        number = Decimal(f"1e{_MAX_DIGITS}")
    if number.adjusted() >= _MAX_DIGITS:
        raise ValueError(f"a number of over {_MAX_DIGITS:,} digits")
    # Exact but for digits below the units, which a number past 1.8e308 may drop.
    return int(number)


def refuse_constant(name: str) -> NoReturn:
    """json's parse_constant for answers: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not JSON")


def legacy_constant(name: str) -> int | None:
    """json's parse_constant for ledger lines an older imgbatch wrote (see above)."""
    return {"Infinity": PAST_FLOAT, "-Infinity": -PAST_FLOAT}.get(name)


def loads_answer(content: str | bytes) -> Any:
    """A service's JSON body, read as standard JSON (ValueError otherwise)."""
    return json.loads(content, parse_float=exact_float, parse_constant=refuse_constant)


def figure(value: float) -> float | None:
    """A computed figure for a JSON document: null when no float holds it (see above). An
    integer is exact at any size and stays."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def add(total: float, value: float) -> float:
    """total + value, exactly when the sum is past a float (an integer price of 10**400 plus
    a float price overflows); digits below the units are dropped then."""
    try:
        return total + value
    except OverflowError:
        return int(total) + int(value)
