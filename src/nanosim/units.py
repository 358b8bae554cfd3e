"""Physical quantities given as numbers or as strings with units, converted to SI.

Scenario files may give a physical value either as a plain number, taken to be in the SI unit
named by the key (``radius_m = 5e-6``), or as a string holding a number and a unit
(``radius_m = "5 um"``). :func:`parse_quantity` converts both to an SI float and checks the
physical dimension, so ``"5 kg"`` for a length is refused with a message saying what was
expected.

Units are parsed, not looked up: a unit expression is a product of unit symbols, each with an
optional SI prefix and an optional integer exponent, joined by ``*``, ``·``, a space or ``/``
(``/`` binds left to right, as in Python, so ``J/mol/K`` is J mol⁻¹ K⁻¹), with parentheses.

Examples
--------
>>> parse_quantity("20 um", "length")
2e-05
>>> parse_quantity("5e-10 m^2/s", "diffusivity")
5e-10
>>> parse_quantity("3 uM", "concentration")
0.003
>>> parse_quantity("30 min", "time")
1800.0
>>> parse_quantity("1e-5", "length")  # a numeric string is taken as SI
1e-05
>>> parse_quantity("5 kg", "length")
Traceback (most recent call last):
...
nanosim.units.UnitError: "5 kg" has dimension mass, expected a length (e.g. "20 um" or a number in m)

Physical dimensions are vectors of integer exponents over
(length, time, amount, mass, temperature).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "UnitError",
    "DIMENSIONS",
    "parse_quantity",
    "parse_unit",
    "format_quantity",
    "format_vector",
    "format_number",
    "quantity",
    "QuantitySpec",
    "Length",
    "Time",
    "Rate",
    "Diffusivity",
    "Velocity",
    "Concentration",
    "Amount",
    "Dimensionless",
]

Dim = tuple[int, int, int, int, int]
"""Exponents of (length, time, amount, mass, temperature)."""

_BASE_NAMES = ("length", "time", "amount", "mass", "temperature")


def _dim(length: int = 0, time: int = 0, amount: int = 0, mass: int = 0, temperature: int = 0) -> Dim:
    return (length, time, amount, mass, temperature)


class UnitError(ValueError):
    """A value that is not a valid quantity of the expected dimension."""


@dataclass(frozen=True)
class Dimension:
    """A named physical dimension with its SI unit and an example for messages.

    Parameters
    ----------
    name : str
        Name used in messages ("length", "diffusivity").
    exponents : tuple of int
        Exponents of (length, time, amount, mass, temperature).
    si_unit : str
        The SI unit in which plain numbers are read ("m^2/s").
    example : str
        An example string with a unit ("2e-10 m^2/s").
    display : tuple of (str, float)
        Units used to print values, largest first, as (symbol, size in SI).
    """

    name: str
    exponents: Dim
    si_unit: str
    example: str
    display: tuple[tuple[str, float], ...] = ()

    @property
    def noun(self) -> str:
        """The name with an indefinite article ("a length", "an amount")."""
        if self.name == "dimensionless":
            return "a dimensionless number"
        article = "an" if self.name[0] in "aeiou" else "a"
        return f"{article} {self.name}"

    @property
    def expectation(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.name == "dimensionless":
            return f'a dimensionless number (e.g. {self.example} or "{self.example}")'
        return f'{self.noun} (e.g. "{self.example}" or a number in {self.si_unit})'


def _prefixed(symbol: str, size: float, prefixes: str) -> tuple[tuple[str, float], ...]:
    factors = {"M": 1e6, "k": 1e3, "": 1.0, "m": 1e-3, "µ": 1e-6, "n": 1e-9, "p": 1e-12}
    return tuple((p + symbol, factors[p] * size) for p in prefixes.split(","))


# New dimensions only need an entry here; the parser is generic.
DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("length", _dim(length=1), "m", "20 um", _prefixed("m", 1.0, ",m,µ,n")),
        Dimension(
            "time",
            _dim(time=1),
            "s",
            "72 h",
            (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)),
        ),
        Dimension("rate", _dim(time=-1), "1/s", "0.1 1/s", (("1/s", 1.0),)),
        Dimension("diffusivity", _dim(length=2, time=-1), "m^2/s", "2e-10 m^2/s", (("m²/s", 1.0),)),
        Dimension("velocity", _dim(length=1, time=-1), "m/s", "1 um/s", _prefixed("m/s", 1.0, ",m,µ,n")),
        # 1 mol/m^3 is exactly 1 mM, which reads better than mol/m^3 for drug levels.
        Dimension("concentration", _dim(length=-3, amount=1), "mol/m^3", "3 uM", _prefixed("M", 1e3, ",m,µ,n,p")),
        Dimension("amount", _dim(amount=1), "mol", "1 nmol", _prefixed("mol", 1.0, ",m,µ,n,p")),
        Dimension("dimensionless", _dim(), "1", "0.5", (("", 1.0),)),
        Dimension("mass", _dim(mass=1), "kg", "1 mg", (("kg", 1.0), ("g", 1e-3), ("mg", 1e-6), ("µg", 1e-9))),
        Dimension("temperature", _dim(temperature=1), "K", "310.15 K", (("K", 1.0),)),
        Dimension("molar mass", _dim(amount=-1, mass=1), "kg/mol", "464.8 g/mol", (("g/mol", 1e-3),)),
        Dimension("pressure", _dim(length=-1, time=-2, mass=1), "Pa", "15.6 mmHg", (("Pa", 1.0),)),
        Dimension("viscosity", _dim(length=-1, time=-1, mass=1), "Pa*s", "1.2 mPa*s", (("Pa·s", 1.0),)),
        Dimension("area", _dim(length=2), "m^2", "1 um^2", (("m²", 1.0),)),
        Dimension("volume", _dim(length=3), "m^3", "1 uL", (("m³", 1.0),)),
        Dimension("inverse length", _dim(length=-1), "1/m", "200 1/cm", (("1/m", 1.0), ("1/cm", 100.0))),
        Dimension("volume flow", _dim(length=3, time=-1), "m^3/s", "1 nl/min", (("m³/s", 1.0),)),
        # Darcy: u = -K grad p, K in m²/(Pa·s) (Baxter & Jain 1989 quote cm²/(mmHg·s))
        Dimension("hydraulic conductivity", _dim(length=3, time=1, mass=-1), "m^2/(Pa*s)",
                  "4.13e-8 cm^2/(mmHg*s)", (("m²/(Pa·s)", 1.0),)),
        # Starling: J/S = L_p Δp, L_p in m/(Pa·s) (Baxter & Jain 1989 quote cm/(mmHg·s))
        Dimension("hydraulic permeability", _dim(length=2, time=1, mass=-1), "m/(Pa*s)",
                  "2.8e-7 cm/(mmHg*s)", (("m/(Pa·s)", 1.0),)),
        # lymphatic drainage L_pL S_L/V in 1/(Pa·s) (Baxter & Jain 1989 quote 1/(mmHg·s))
        Dimension("lymphatic coefficient", _dim(length=1, time=1, mass=-1), "1/(Pa*s)",
                  "1.33e-5 1/(mmHg*s)", (("1/(Pa·s)", 1.0),)),
    )
}
_BY_EXPONENTS: dict[Dim, Dimension] = {}
for _d in DIMENSIONS.values():
    _BY_EXPONENTS.setdefault(_d.exponents, _d)

# Sizes are exact fractions so that "20 um" gives the float nearest 2e-5, rounded once at the end.
_PREFIXES = {
    "p": Fraction(1, 10**12),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "µ": Fraction(1, 10**6),  # U+00B5 MICRO SIGN
    "μ": Fraction(1, 10**6),  # U+03BC GREEK SMALL LETTER MU, what NFKC turns the micro sign into
    "m": Fraction(1, 10**3),
    "c": Fraction(1, 10**2),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
}

_MMHG_PA = Fraction("133.322387415")  # conventional millimetre of mercury, exact by definition

# symbol: (size in SI, dimension, accepts SI prefixes)
_UNITS: dict[str, tuple[Fraction, Dim, bool]] = {
    "m": (Fraction(1), _dim(length=1), True),
    "s": (Fraction(1), _dim(time=1), True),
    "min": (Fraction(60), _dim(time=1), False),
    "h": (Fraction(3600), _dim(time=1), False),
    "d": (Fraction(86400), _dim(time=1), False),
    "mol": (Fraction(1), _dim(amount=1), True),
    "M": (Fraction(1000), _dim(length=-3, amount=1), True),  # molar: mol/L = 1000 mol/m^3
    "L": (Fraction(1, 1000), _dim(length=3), True),
    "l": (Fraction(1, 1000), _dim(length=3), True),
    "g": (Fraction(1, 1000), _dim(mass=1), True),
    "Pa": (Fraction(1), _dim(length=-1, time=-2, mass=1), True),
    "mmHg": (_MMHG_PA, _dim(length=-1, time=-2, mass=1), False),
    "K": (Fraction(1), _dim(temperature=1), True),
    "%": (Fraction(1, 100), _dim(), False),
}

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_VALUE_RE = re.compile(rf"^\s*({_NUMBER})(.*)$", re.DOTALL)
_NON_FINITE_RE = re.compile(r"^\s*[+-]?(nan|inf|infinity)\b", re.IGNORECASE)
_TOKEN_RE = re.compile(
    r"\s*(?:"
    r"(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-zµμ%]+)(?P<exp>[+-]?\d+)?"
    r"|(?P<sup>[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)"
    r"|(?P<op>\*\*|[*/^()·⋅+-])"
    r")"
)

_MAX_EXPONENT = 12  # no physical unit needs more; bounds the work of exact arithmetic

QUANTITY_PATTERN = rf"^\s*{_NUMBER}(\s*\S.*)?$"
"""JSON-Schema pattern for a quantity string: a number, optionally followed by a unit."""


def _mul(a: Dim, b: Dim, sign: int = 1) -> Dim:
    return tuple(x + sign * y for x, y in zip(a, b))  # type: ignore[return-value]


def _pow(a: Dim, n: int) -> Dim:
    return tuple(x * n for x in a)  # type: ignore[return-value]


class _UnitParser:
    """Recursive-descent parser of unit expressions.

    Grammar::

        product := ['/'] factor (('*' | '·' | '/' | <juxtaposition>) factor)*
        factor  := primary [('^' | '**') integer | superscript]
        primary := SYMBOL[attached integer exponent] | NUMBER | '(' product ')'
    """

    def __init__(self, text: str, whole: str):
        self.text = text
        self.whole = whole
        self.tokens = self._tokenize(text)
        self.pos = 0

    def _tokenize(self, text: str) -> list[tuple[str, str, str | None]]:
        tokens = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN_RE.match(text, pos)
            if m is None or m.end() == pos:
                bad = text[pos:].strip()[:1]
                raise UnitError(f'unexpected character "{bad}" in unit "{text.strip()}"')
            for kind in ("num", "name", "sup", "op"):
                if m.group(kind) is not None:
                    tokens.append((kind, m.group(kind), m.group("exp") if kind == "name" else None))
                    break
            pos = m.end()
        return tokens

    def _peek(self) -> tuple[str, str, str | None] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str, str | None]:
        tok = self._peek()
        if tok is None:
            raise UnitError(f'unit "{self.text.strip()}" ends too early')
        self.pos += 1
        return tok

    def parse(self) -> tuple[Fraction, Dim]:
        if not self.tokens:
            return Fraction(1), _dim()
        scale, dim = self._product()
        if self._peek() is not None:
            raise UnitError(f'unexpected "{self._peek()[1]}" in unit "{self.text.strip()}"')
        return scale, dim

    def _product(self) -> tuple[Fraction, Dim]:
        tok = self._peek()
        if tok is not None and tok[0] == "op" and tok[1] == "/":
            scale, dim = Fraction(1), _dim()  # "/s" means 1/s
        else:
            scale, dim = self._factor()
        while True:
            tok = self._peek()
            if tok is None or (tok[0] == "op" and tok[1] == ")"):
                return scale, dim
            if tok[0] == "op" and tok[1] in ("*", "·", "⋅", "/"):
                self.pos += 1
                s2, d2 = self._factor()
                if tok[1] == "/":
                    scale, dim = scale / s2, _mul(dim, d2, -1)
                else:
                    scale, dim = scale * s2, _mul(dim, d2)
            elif tok[0] in ("name", "num") or (tok[0] == "op" and tok[1] == "("):
                s2, d2 = self._factor()  # juxtaposition multiplies: "mPa s"
                scale, dim = scale * s2, _mul(dim, d2)
            else:
                raise UnitError(f'unexpected "{tok[1]}" in unit "{self.text.strip()}"')

    def _factor(self) -> tuple[Fraction, Dim]:
        scale, dim, attached = self._primary()
        exponent = attached
        tok = self._peek()
        if tok is not None and (tok[0] == "sup" or (tok[0] == "op" and tok[1] in ("^", "**"))):
            if exponent is not None:
                raise UnitError(f'two exponents on one unit in "{self.text.strip()}"')
            self.pos += 1
            exponent = self._integer(tok[1].translate(_SUPERSCRIPTS) if tok[0] == "sup" else None)
        if exponent is None:
            return scale, dim
        return scale**exponent, _pow(dim, exponent)

    def _integer(self, from_superscript: str | None) -> int:
        if from_superscript is not None:
            text = from_superscript
        else:
            sign = ""
            tok = self._next()
            if tok[0] == "op" and tok[1] in "+-":
                sign = tok[1]
                tok = self._next()
            paren = tok[0] == "op" and tok[1] == "("
            if paren:  # "s^(-1)"
                inner = self._integer(None)
                close = self._next()
                if close[1] != ")":
                    raise UnitError(f'missing ")" in unit "{self.text.strip()}"')
                return -inner if sign == "-" else inner
            if tok[0] != "num":
                raise UnitError(f'expected an integer exponent after "^" in unit "{self.text.strip()}"')
            text = sign + tok[1]
        try:
            power = int(text)
        except ValueError:
            raise UnitError(f'exponents must be integers, got "{text}" in unit "{self.text.strip()}"') from None
        if abs(power) > _MAX_EXPONENT:
            raise UnitError(f'exponent {power} is too large in unit "{self.text.strip()}"')
        return power

    def _primary(self) -> tuple[Fraction, Dim, int | None]:
        kind, text, attached = self._next()
        if kind == "num":
            return Fraction(text), _dim(), None
        if kind == "name":
            scale, dim = _lookup_symbol(text, self.whole)
            return scale, dim, self._integer(attached) if attached is not None else None
        if kind == "op" and text == "(":
            scale, dim = self._product()
            close = self._next()
            if close[1] != ")":
                raise UnitError(f'missing ")" in unit "{self.text.strip()}"')
            return scale, dim, None
        raise UnitError(f'unexpected "{text}" in unit "{self.text.strip()}"')


def _lookup_symbol(symbol: str, whole: str) -> tuple[Fraction, Dim]:
    # A whole symbol wins over prefix + symbol, so "min" is minutes and "mmHg" is not milli-mHg.
    if symbol in _UNITS:
        size, dim, _ = _UNITS[symbol]
        return size, dim
    prefix, rest = symbol[:1], symbol[1:]
    if prefix in _PREFIXES and rest in _UNITS and _UNITS[rest][2]:
        size, dim, _ = _UNITS[rest]
        return _PREFIXES[prefix] * size, dim
    known = ", ".join(u for u in _UNITS if u != "l")
    raise UnitError(
        f'unknown unit "{symbol}" in "{whole.strip()}"; known units are {known}, '
        "with SI prefixes p n u µ m c k M"
    )


def parse_unit(unit: str) -> tuple[float, Dim]:
    """Parse a unit expression into its size in SI and its dimension.

    Parameters
    ----------
    unit : str
        A unit expression such as ``"m^2/s"``, ``"mPa*s"`` or ``"1/s"``; empty means 1.

    Returns
    -------
    size : float
        How many SI units one of this unit is (``parse_unit("um")[0] == 1e-6``).
    dimension : tuple of int
        Exponents of (length, time, amount, mass, temperature).

    Raises
    ------
    UnitError
        If the expression cannot be parsed or names an unknown unit.
    """
    scale, dim = _UnitParser(unit, unit).parse()
    return float(scale), dim


def dimension_name(exponents: Dim) -> str:
    """Name a dimension vector: a known name ("mass") or a product ("length^2 time^-1")."""
    known = _BY_EXPONENTS.get(exponents)
    if known is not None:
        return known.name
    parts = []
    for name, power in zip(_BASE_NAMES, exponents):
        if power == 1:
            parts.append(name)
        elif power != 0:
            parts.append(f"{name}^{power}")
    return " ".join(parts)


def _get_dimension(dimension: str | Dimension) -> Dimension:
    if isinstance(dimension, Dimension):
        return dimension
    try:
        return DIMENSIONS[dimension]
    except KeyError:
        raise KeyError(f"unknown dimension {dimension!r}; known: {', '.join(DIMENSIONS)}") from None


def parse_quantity(value: Any, dimension: str | Dimension, *, field: str = "") -> float:
    """Convert a number or a "number unit" string to an SI float of the given dimension.

    Parameters
    ----------
    value : int, float or str
        A number (taken to be in the SI unit of `dimension`), a numeric string such as
        ``"1e-5"`` (YAML 1.1 loads ``1e-5`` as a string), or a string ``"number unit"``
        such as ``"20 um"`` or ``"5e-10 m^2/s"``.
    dimension : str
        One of the names in :data:`DIMENSIONS` ("length", "time", "rate", "diffusivity",
        "velocity", "concentration", "amount", "dimensionless", ...).
    field : str, optional
        Name of the setting, put in front of error messages.

    Returns
    -------
    float
        The value in SI units (m, s, mol, kg, K and their products).

    Raises
    ------
    UnitError
        If the value is not finite, cannot be parsed, or has another dimension.
    """
    return _to_float(_parse_exact(value, dimension, field), dimension, value, field)


def _to_float(exact: Fraction | float, dimension: str | Dimension, value: Any, field: str) -> float:
    try:
        result = float(exact)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        prefix = f"{field}: " if field else ""
        expected = _get_dimension(dimension).expectation
        raise UnitError(f"{prefix}{show_input(value)} is not a finite number; expected {expected}")
    return result


def show_input(value: Any) -> str:
    """A raw input as it appears in messages: strings quoted, numbers as written."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _parse_exact(value: Any, dimension: str | Dimension, field: str = "") -> Fraction | float:
    dim = _get_dimension(dimension)
    prefix = f"{field}: " if field else ""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        shown = repr(value)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        raise UnitError(f"{prefix}expected {dim.expectation}, got {type(value).__name__} {shown}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise UnitError(f"{prefix}{value!r} is not a finite number; expected {dim.expectation}")
        return value if isinstance(value, float) else Fraction(value)

    text = value
    if _NON_FINITE_RE.match(text):
        raise UnitError(f'{prefix}"{text}" is not a finite number; expected {dim.expectation}')
    m = _VALUE_RE.match(text)
    if m is None:
        raise UnitError(f'{prefix}"{text}" is not a quantity; expected {dim.expectation}')
    unit_text = m.group(2)
    if not unit_text.strip():
        return _exact_number(m.group(1))
    try:
        scale, exponents = _UnitParser(unit_text, text).parse()
    except UnitError as exc:
        raise UnitError(f'{prefix}"{text}" is not a quantity ({exc}); expected {dim.expectation}') from None
    if exponents != dim.exponents:
        found = dimension_name(exponents)
        has = "no dimension" if found == "dimensionless" else f"dimension {found}"
        raise UnitError(f'{prefix}"{text}" has {has}, expected {dim.expectation}')
    return _exact_number(m.group(1)) * scale


def _exact_number(text: str) -> Fraction | float:
    # Beyond double range the exact value is useless and 10**exponent would be huge to build.
    exponent = re.search(r"[eE]([+-]?\d+)$", text)
    if exponent is not None and abs(int(exponent.group(1))) > 400:
        return float(text)
    return Fraction(text)


def format_number(x: float, digits: int = 4) -> str:
    """Format a number compactly: ``1e-05`` → ``1e-5``, ``20.0`` → ``20``."""
    text = f"{x:.{digits}g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


def _display_unit(magnitude: float, dim: Dimension) -> tuple[str, float]:
    if not dim.display:
        return dim.si_unit, 1.0
    for symbol, size in dim.display:
        if magnitude >= size * (1 - 1e-12):
            return symbol, size
    return dim.display[-1] if magnitude > 0 else dim.display[0]


def format_quantity(value_si: float, dimension: str | Dimension, digits: int = 4) -> str:
    """Format an SI value with a readable unit: ``format_quantity(2e-5, "length") == "20 µm"``."""
    dim = _get_dimension(dimension)
    magnitude = abs(value_si)
    if magnitude == 0:
        return f"0 {dim.si_unit}" if dim.name != "dimensionless" else "0"
    symbol, size = _display_unit(magnitude, dim)
    return f"{format_number(value_si / size, digits)} {symbol}".rstrip()


def format_vector(values_si: tuple[float, ...], dimension: str | Dimension, digits: int = 4) -> str:
    """Format a vector in one common unit: ``"(0, 10, 20) µm"``."""
    dim = _get_dimension(dimension)
    magnitude = max((abs(v) for v in values_si), default=0.0)
    symbol, size = _display_unit(magnitude, dim) if magnitude else (dim.si_unit, 1.0)
    inner = ", ".join(format_number(v / size, digits) for v in values_si)
    return f"({inner}) {symbol}".rstrip()


_OPS = {"gt": (">", lambda x, b: x > b), "ge": (">=", lambda x, b: x >= b), "lt": ("<", lambda x, b: x < b),
        "le": ("<=", lambda x, b: x <= b)}
_OP_ERROR = {"gt": "greater_than", "ge": "greater_than_equal", "lt": "less_than", "le": "less_than_equal"}
_OP_JSON = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}
_OP_WORDS = {"gt": "greater than", "ge": "greater than or equal to", "lt": "less than", "le": "less than or equal to"}


class QuantitySpec:
    """Pydantic annotation that validates a quantity of one dimension into an SI float.

    Used through :func:`quantity`; the type seen by type checkers is ``float``. In the JSON
    Schema a quantity is ``anyOf: [number (with its bounds), string matching a number and a
    unit]``, each branch describing the SI unit.

    Parameters
    ----------
    dimension : str
        Name of the dimension in :data:`DIMENSIONS`.
    gt, ge, lt, le : float, optional
        Bounds on the SI value.
    special : tuple of str
        Words accepted as they are instead of a quantity (``("auto",)``).
    """

    def __init__(
        self,
        dimension: str,
        *,
        gt=None,
        ge=None,
        lt=None,
        le=None,
        special: tuple[str, ...] = (),
        unit: str | None = None,
    ):
        self.dimension = _get_dimension(dimension)
        self.bounds = {k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None}
        self.special = tuple(special)
        self.unit = unit
        self._unit_size = Fraction(1)
        if unit is not None:
            size, exponents = _UnitParser(unit, unit).parse()
            if exponents != self.dimension.exponents:
                raise ValueError(f"unit {unit!r} is not a unit of {self.dimension.name}")
            self._unit_size = size

    @property
    def unit_name(self) -> str:
        """The unit plain numbers are read in (the SI unit unless another was chosen)."""
        return self.unit if self.unit is not None else self.dimension.si_unit

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.bounds.items())
        if self.special:
            extra += f", special={self.special!r}"
        if self.unit is not None:
            extra += f", unit={self.unit!r}"
        return f"QuantitySpec({self.dimension.name!r}{extra})"

    @property
    def hint(self) -> str:
        """A short description of a valid value, for error hints."""
        dim = self.dimension
        bounds = " and ".join(f"{_OPS[k][0]} {format_number(v)}" for k, v in self.bounds.items())
        bounds = f" {bounds}" if bounds else ""
        if dim.name == "dimensionless":
            text = f"a number{bounds}, e.g. {dim.example}"
        else:
            text = f'{dim.noun}{bounds} in {self.unit_name}, e.g. "{dim.example}"'
        if self.special:
            text += ", or " + " or ".join(f'"{s}"' for s in self.special)
        return text

    def validate(self, value: Any) -> float | str:
        """Validate one value; raises ``PydanticCustomError`` so that pydantic reports its path."""
        if isinstance(value, str) and value.strip() in self.special:
            return value.strip()
        try:
            if self.unit is None:
                number = parse_quantity(value, self.dimension)
            elif _is_plain_number(value):
                number = parse_quantity(value, "dimensionless")  # already in self.unit
            else:
                exact = _parse_exact(value, self.dimension)
                number = _to_float(exact / self._unit_size, self.dimension, value, "")
        except UnitError as exc:
            raise PydanticCustomError("quantity", "{message}", {"message": str(exc), "hint": self.hint}) from None
        for key, bound in self.bounds.items():
            if not _OPS[key][1](number, bound):
                raise PydanticCustomError(
                    _OP_ERROR[key], f"Input should be {_OP_WORDS[key]} {{{key}}}", {key: bound, "value": number}
                )
        return number

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        dim = self.dimension
        number: dict[str, Any] = {"type": "number"}
        for key, bound in self.bounds.items():
            number[_OP_JSON[key]] = bound
        unit = "" if dim.name == "dimensionless" else f" in {self.unit_name}"
        number["description"] = f"{dim.name}{unit}"
        text = {
            "type": "string",
            "pattern": QUANTITY_PATTERN,
            "description": f'{dim.name} as a number and a unit, e.g. "{dim.example}"',
        }
        branches: list[dict[str, Any]] = [number, text]
        branches += [{"const": s} for s in self.special]
        return {"anyOf": branches}


def _is_plain_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        m = _VALUE_RE.match(value)
        return m is not None and not m.group(2).strip()
    return False


def quantity(
    dimension: str,
    *,
    gt=None,
    ge=None,
    lt=None,
    le=None,
    special: tuple[str, ...] = (),
    unit: str | None = None,
) -> Any:
    """Build a pydantic field type for a quantity of `dimension`, optionally bounded.

    Parameters
    ----------
    dimension : str
        Name of the dimension in :data:`DIMENSIONS`.
    gt, ge, lt, le : float, optional
        Bounds on the SI value (checked after unit conversion).
    special : tuple of str
        Words accepted instead of a quantity, such as ``("auto",)``.
    unit : str, optional
        Unit of the validated value and of plain numbers, when a field is named after a
        non-SI unit (``molar_mass_g_per_mol``: ``unit="g/mol"``); default the SI unit.

    Returns
    -------
    typing.Annotated
        ``Annotated[float, QuantitySpec(...)]`` (or ``float | Literal[...]`` with `special`).

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class Vessel(BaseModel):
    ...     radius_m: quantity("length", gt=0)
    >>> Vessel(radius_m="5 um").radius_m
    5e-06
    """
    spec = QuantitySpec(dimension, gt=gt, ge=ge, lt=lt, le=le, special=special, unit=unit)
    if special:
        return Annotated[float | Literal[special], spec]  # type: ignore[valid-type]
    return Annotated[float, spec]


Length = quantity("length")
"""A length in m; strings such as ``"20 um"`` are converted."""
Time = quantity("time")
"""A time in s; strings such as ``"72 h"`` are converted."""
Rate = quantity("rate")
"""A first-order rate in 1/s; strings such as ``"0.1 1/h"`` are converted."""
Diffusivity = quantity("diffusivity")
"""A diffusivity in m^2/s; strings such as ``"2e-10 m^2/s"`` are converted."""
Velocity = quantity("velocity")
"""A velocity (or wall permeability) in m/s; strings such as ``"1 um/s"`` are converted."""
Concentration = quantity("concentration")
"""A concentration in mol/m^3 (= mM); strings such as ``"3 uM"`` are converted."""
Amount = quantity("amount")
"""An amount of substance in mol; strings such as ``"1 nmol"`` are converted."""
Dimensionless = quantity("dimensionless")
"""A pure number; strings such as ``"50 %"`` are converted."""
