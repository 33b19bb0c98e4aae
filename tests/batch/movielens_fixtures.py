"""A tiny ml-100k in both source formats (GroupLens zip, RecBole wheel), with the same content."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

RATINGS = [("1", "10", 4, 881250949), ("1", "20", 2, 881250950), ("2", "10", 5, 891717742)]
MOVIES = [
    ("10", "Toy Story", "01-Jan-1995", ["Animation", "Children's", "Comedy"]),
    ("20", "Four Rooms", "", ["Thriller"]),
]
PEOPLE = [("1", 24, "M", "technician", "85711"), ("2", 53, "F", "other", "94043")]
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def grouplens_zip() -> bytes:
    """The GroupLens layout: u.data (tabs), u.item and u.user (pipes, latin-1)."""
    data = "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS)
    items = ""
    for item, title, released, genres in MOVIES:
        flags = "|".join("1" if g in genres else "0" for g in GENRES)
        year = f" ({released[-4:]})" if released else ""
        items += f"{item}|{title}{year}|{released}||http://x|{flags}\n"
    users = "".join(f"{u}|{a}|{g}|{o}|{z}\n" for u, a, g, o, z in PEOPLE)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-100k/u.data", data)
        archive.writestr("ml-100k/u.item", items.encode("latin-1"))
        archive.writestr("ml-100k/u.user", users)
    return buffer.getvalue()


def recbole_wheel(folder: Path) -> Path:
    """A minimal installable-looking recbole 1.2.1 wheel holding the RecBole atomic files."""
    prefix = "recbole/dataset_example/ml-100k/ml-100k"
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    inter += "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS)
    item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    for movie, title, released, genres in MOVIES:
        item += f"{movie}\t{title}\t{released[-4:] or 'unkonwn'}\t{' '.join(genres)}\n"
    user = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    user += "".join(f"{u}\t{a}\t{g}\t{o}\t{z}\n" for u, a, g, o, z in PEOPLE)
    info = "recbole-1.2.1.dist-info"
    path = folder / "recbole-1.2.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{prefix}.inter", inter)
        wheel.writestr(f"{prefix}.item", item)
        wheel.writestr(f"{prefix}.user", user)
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: recbole\nVersion: 1.2.1\n")
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{info}/RECORD", "")
    return path
