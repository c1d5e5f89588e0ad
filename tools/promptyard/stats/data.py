"""Reading experiment data files (CSV, JSONL, Parquet) into a pandas DataFrame.

One row per unit. Errors are `ConfigError`s naming the file and the fix; reading Parquet
needs pyarrow (`pip install 'promptyard[parquet]'`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from promptyard.errors import ConfigError
from promptyard.stats._base import shown


def _read_csv(path: Path, text_columns: Sequence[str]) -> pd.DataFrame:
    # Unit ids and variant names stay text ("007" is not 7).
    return pd.read_csv(path, dtype={c: "string" for c in text_columns})


def _read_jsonl(path: Path, text_columns: Sequence[str]) -> pd.DataFrame:
    return pd.read_json(path, lines=True, dtype=False)


def _read_parquet(path: Path, text_columns: Sequence[str]) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{path}: reading Parquet needs pyarrow",
            hint="pip install 'promptyard[parquet]' (or use CSV or JSONL)",
        ) from None
    return pd.read_parquet(path)


DATA_READERS: dict[str, Callable[[Path, Sequence[str]], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}


def read_data(path: Path, *, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of a CSV, JSONL or Parquet file (by extension); `text_columns` stay strings."""
    reader = DATA_READERS.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(
            f"{path}: unsupported data format {path.suffix or '(no extension)'!r}",
            hint=f"use one of {', '.join(sorted(DATA_READERS))}",
        )
    if not path.is_file():
        raise ConfigError(f"{path}: no such file", hint="check the --data path")
    try:
        frame = reader(path, text_columns)
    except ConfigError:
        raise
    except pd.errors.EmptyDataError:
        raise ConfigError(
            f"{path}: the file is empty; it needs a header and one row per unit"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # pandas/pyarrow raise many types for malformed files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{path}: not a valid {path.suffix.lstrip('.').upper()} file ({first})"
        ) from None
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"{path}: expected a table with one row per unit")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def text_values(frame: pd.DataFrame, column: str, path: str) -> np.ndarray:
    """A column as strings; a ConfigError naming the first row without a value."""
    series = frame[column]
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing)) + 1
        raise ConfigError(
            f"{path}: row {row} has no {column!r}; every row needs one",
            hint="drop or fix the rows with an empty value",
        )
    values = series.to_numpy(dtype=object)
    return np.array([_as_text(v) for v in values], dtype=object)


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JSON 7.0 and 7 name the same unit
    return str(value)


_BOOLEAN_TEXT = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


def metric_values(frame: pd.DataFrame, column: str, *, binary: bool, path: str) -> np.ndarray:
    """A metric column as floats (NaN = no value); a ConfigError at the first bad value.

    Binary metrics take 0/1 or true/false; continuous metrics take finite numbers within
    ±`MAX_MAGNITUDE` (beyond it, the variance overflows).
    """
    series = frame[column]
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.astype(float).to_numpy()
    elif binary:
        values = series.astype(str).str.strip().str.lower().map(_BOOLEAN_TEXT).to_numpy(float)
    else:
        values = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
    if binary:
        bad = ~missing & ~np.isin(values, (0.0, 1.0))
        expected = "0/1 or true/false"
    else:
        bad = ~missing & ~np.isfinite(values)
        expected = "a finite number"
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise ConfigError(
            f"{path}: row {row}: {column!r} is {shown(series.iloc[row - 1])}; "
            f"a {'binary' if binary else 'continuous'} metric needs {expected}"
        )
    values = values.astype(float)
    values[missing] = np.nan
    if not binary:
        _check_magnitude(values, column, path)
    floats: np.ndarray = values
    return floats


# Squares of values up to this size, summed over 10⁸ rows, stay finite: every variance
# the analysis computes does. No metric in any unit comes near it.
MAX_MAGNITUDE = 1e150


def _check_magnitude(values: np.ndarray, column: str, path: str) -> None:
    """A ConfigError naming the rows whose value would overflow the variance."""
    with np.errstate(invalid="ignore"):
        huge = np.flatnonzero(np.abs(values) > MAX_MAGNITUDE)
    if huge.size == 0:
        return
    rows = ", ".join(str(i + 1) for i in huge[:5]) + (", ..." if huge.size > 5 else "")
    raise ConfigError(
        f"{path}: row{'s' if huge.size > 1 else ''} {rows}: {column!r} is beyond "
        f"±{MAX_MAGNITUDE:g} ({shown(float(values[huge[0]]))}"
        f"{' in row ' + str(huge[0] + 1) if huge.size > 1 else ''}); "
        "values this large overflow the variance",
        hint=f"give {column!r} in smaller units, or fix the rows",
    )
