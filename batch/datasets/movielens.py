"""MovieLens-100k: the GroupLens archive, or offline the copy inside the recbole wheel.

Both sources parse into the events schema (rating as reward), item attributes (title, year,
genres) and user attributes (age, gender, occupation, zip_code), written once into the cache.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batch.datasets.files import DatasetFiles, DatasetWriter, dataset_layout, is_complete
from batch.errors import DatasetUnavailableError
from batch.events_schema import conform_events

NAME = "movielens-100k"
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_PREFIX = "recbole/dataset_example/ml-100k/ml-100k"
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
Tables = tuple[pa.Table, pa.Table, pa.Table]


def _read(data: bytes, names: list[str], delimiter: str, types: dict[str, pa.DataType]) -> pa.Table:
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, encoding="latin-1"),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
    )


def _year(text: pa.Array) -> pa.Array:
    """Four-digit years as int32; anything else (empty, 'unknown') becomes null."""
    valid = pc.match_substring_regex(text, r"^\d{4}$")
    return pc.cast(pc.if_else(valid, text, pa.scalar(None, pa.string())), pa.int32())


def _events(user: pa.Array, item: pa.Array, rating: pa.Array, seconds: pa.Array) -> pa.Table:
    user_id = pc.cast(user, pa.string())
    item_id = pc.cast(item, pa.string())
    micros = pc.multiply(pc.cast(seconds, pa.int64()), 1_000_000)
    table = pa.table(
        {
            "event_id": pc.binary_join_element_wise("u", user_id, "-i", item_id, ""),
            "user_id": user_id,
            "item_id": item_id,
            "reward": pc.cast(rating, pa.float64()),
            "timestamp": micros.cast(pa.timestamp("us", tz="UTC")),
        }
    )
    return conform_events(table)


def _users(table: pa.Table) -> pa.Table:
    return pa.table(
        {
            "user_id": pc.cast(table.column("user_id"), pa.string()),
            "age": pc.cast(table.column("age"), pa.int32()),
            "gender": table.column("gender"),
            "occupation": table.column("occupation"),
            "zip_code": table.column("zip_code"),
        }
    )


def parse_grouplens_zip(archive: bytes) -> Tables:
    """Events, items and users from the GroupLens `ml-100k.zip` (u.data, u.item, u.user)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        read = {Path(name).name: name for name in zipped.namelist()}
        data = zipped.read(read["u.data"])
        item = zipped.read(read["u.item"])
        user = zipped.read(read["u.user"])
    ratings = _read(data, ["user", "item", "rating", "ts"], "\t", {"user": pa.string()})
    flags = [f"g{i}" for i in range(len(GENRES))]
    names = ["item_id", "title", "released", "video", "url", *flags]
    movies = _read(item, names, "|", {"item_id": pa.string(), "released": pa.string()})
    title = pc.replace_substring_regex(movies.column("title"), r"\s*\(\d{4}\)\s*$", "")
    year = _year(pc.utf8_slice_codeunits(movies.column("released"), -4))
    genre_rows = zip(*(movies.column(flag).to_pylist() for flag in flags), strict=True)
    genres = [[GENRES[i] for i, on in enumerate(row) if on] for row in genre_rows]
    items = pa.table(
        {
            "item_id": movies.column("item_id"),
            "title": title,
            "year": year,
            "genres": pa.array(genres, pa.list_(pa.string())),
        }
    )
    people = _read(
        user, ["user_id", "age", "gender", "occupation", "zip_code"], "|", {"zip_code": pa.string()}
    )
    events = _events(*(ratings.column(name) for name in ("user", "item", "rating", "ts")))
    return events, items, _users(people)


def _atomic(data: bytes, types: dict[str, pa.DataType]) -> pa.Table:
    header = data[: data.index(b"\n")].decode("utf-8").split("\t")
    names = [re.sub(r":.*$", "", column) for column in header]
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
    )
    return table


def parse_recbole_wheel(wheel: Path) -> Tables:
    """Events, items and users from RecBole's atomic files inside the recbole wheel."""
    with zipfile.ZipFile(wheel) as zipped:
        inter = zipped.read(f"{RECBOLE_PREFIX}.inter")
        item = zipped.read(f"{RECBOLE_PREFIX}.item")
        user = zipped.read(f"{RECBOLE_PREFIX}.user")
    ratings = _atomic(inter, {"user_id": pa.string(), "item_id": pa.string()})
    movies = _atomic(item, {"item_id": pa.string(), "release_year": pa.string()})
    classes = movies.column("class").to_pylist()
    genres = [[genre for genre in (text or "").split(" ") if genre] for text in classes]
    items = pa.table(
        {
            "item_id": movies.column("item_id"),
            "title": movies.column("movie_title"),
            "year": _year(movies.column("release_year")),
            "genres": pa.array(genres, pa.list_(pa.string())),
        }
    )
    people = _atomic(user, {"user_id": pa.string(), "zip_code": pa.string()})
    columns = ("user_id", "item_id", "rating", "timestamp")
    events = _events(*(ratings.column(name) for name in columns))
    return events, items, _users(people)


def _download(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https or test URL)
        data: bytes = response.read()
    return data


def _pip_download(requirement: str, dest: Path, pip_args: tuple[str, ...]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += [*pip_args, requirement, "-d", str(dest)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    name = requirement.split("==", maxsplit=1)[0]
    wheels = sorted(dest.glob(f"{name}-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OSError(f"pip download {requirement} failed ({done.returncode}): {tail[0]}")
    return wheels[-1]


@dataclass(frozen=True)
class MovieLensSources:
    """Where ml-100k comes from: the GroupLens URL first, then the recbole wheel via pip."""

    url: str = GROUPLENS_URL
    timeout: float = 5.0
    requirement: str = RECBOLE_REQUIREMENT
    pip_args: tuple[str, ...] = ()


def fetch_movielens_100k(downloads: Path, sources: MovieLensSources = MovieLensSources()) -> Tables:
    """Parse ml-100k from the GroupLens archive, falling back to the recbole wheel offline."""
    archive = downloads / "ml-100k.zip"
    tried: list[str] = []
    try:
        if not archive.exists():
            downloads.mkdir(parents=True, exist_ok=True)
            archive.write_bytes(_download(sources.url, sources.timeout))
        return parse_grouplens_zip(archive.read_bytes())
    except (OSError, zipfile.BadZipFile, KeyError, pa.ArrowInvalid) as error:
        archive.unlink(missing_ok=True)
        tried.append(f"download {sources.url}: {error}")
    try:
        wheel = _pip_download(sources.requirement, downloads, sources.pip_args)
        return parse_recbole_wheel(wheel)
    except (
        OSError,
        subprocess.SubprocessError,
        zipfile.BadZipFile,
        KeyError,
        pa.ArrowInvalid,
    ) as error:
        tried.append(f"the copy in the {sources.requirement} wheel: {error}")
    raise DatasetUnavailableError(f"{NAME} is unavailable; tried " + "; then ".join(tried))


def load_movielens_100k(
    cache: Path, sources: MovieLensSources = MovieLensSources()
) -> DatasetFiles:
    """ml-100k as dataset files under `cache`, built once and reused afterwards."""
    root = cache / NAME
    if not is_complete(root):
        events, items, users = fetch_movielens_100k(cache / "downloads", sources)
        with DatasetWriter(root) as writer:
            writer.add_events(events)
            writer.set_items(items)
            writer.set_users(users)
    return dataset_layout(root)
