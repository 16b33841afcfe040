"""Realistic lead CSV files for the import benchmark and tests: the header a CRM export would have
(aliases, not our field names) and people drawn from the demo word pools."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from . import data as D

HEADER = ("Email", "First Name", "Last Name", "Title", "Company / Account", "Industry", "Employees", "Country",
          "City", "Time Zone", "Lead Source", "Persona", "Stage")
#: The lead columns those headers import into, in the same order.
COLUMNS = ("email", "first_name", "last_name", "title", "company", "industry", "employees", "country", "city",
           "timezone", "lead_source", "persona", "stage")

Row = tuple[str, str, str, str, str, str, int, str, str, str, str, str, str]


def lead_rows(n: int, seed: int = 7) -> list[Row]:
    """`n` leads with unique e-mail addresses (as stored: lower-case), deterministic by seed."""
    rnd = random.Random(seed)
    firsts = rnd.choices(D.FIRST_NAMES, k=n)
    lasts = rnd.choices(D.LAST_NAMES, k=n)
    personas = rnd.choices(D.PERSONAS, weights=D.PERSONA_WEIGHTS, k=n)
    stages = rnd.choices(D.STAGES, weights=D.STAGE_WEIGHTS, k=n)
    sources = rnd.choices(D.LEAD_SOURCES, weights=D.LEAD_SOURCE_WEIGHTS, k=n)
    industries = rnd.choices(D.INDUSTRIES, weights=D.INDUSTRY_WEIGHTS, k=n)
    locations = rnd.choices(D.LOCATIONS, weights=[loc[3] for loc in D.LOCATIONS], k=n)
    prefixes = rnd.choices(D.COMPANY_PREFIXES, k=n)
    roots = rnd.choices(D.COMPANY_ROOTS, k=n)
    kinds = rnd.choices(D.COMPANY_KINDS, k=n)
    picks = [rnd.random() for _ in range(n)]
    sizes = [int(rnd.lognormvariate(5.0, 1.6)) + 5 for _ in range(n)]
    ascii_ = str.maketrans({"ü": "u", "ë": "e", "ø": "o", "'": ""})
    rows: list[Row] = []
    for i in range(n):
        first, last = firsts[i], lasts[i]
        company = f"{prefixes[i]}{roots[i]} {kinds[i]}"
        loc = locations[i]
        titles = D.TITLES[personas[i]]
        email = f"{first}.{last}.{i}@{prefixes[i]}{roots[i]}.com".lower().translate(ascii_)
        rows.append((email, first, last, titles[int(picks[i] * len(titles))], f"{company} {loc[4]}", industries[i],
                     sizes[i], loc[0], loc[1], loc[2], sources[i], personas[i], stages[i]))
    return rows


def write_csv(path: Path, rows: list[Row]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
