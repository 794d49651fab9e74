"""Write eidr_sample.csv beside this file: a deterministic, realistic ORGS_IMDB_FILTERED sample.

    python enrichctl/data/generate_eidr_sample.py

Rows look like EIDR's: ORG_ID is a party ID (10.5237/XXXX-XXXX), CREATIVEWORKID a content ID
(10.5240/XXXX-XXXX-XXXX-XXXX-XXXX-C with its ISO 7064 Mod 37,36 check character), IMDB_VALUE
mostly valid title IDs, with the dirt real data has: NULL (empty cell), blank, padded,
upper-case prefix, duplicates, person IDs, wrong lengths and hostile values.
The same seed always produces the same file (a test checks the committed copy).
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "eidr_sample.csv"
ROWS = 300
SEED = 20261125
CHECK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: Values that must never reach the enrichment API, whatever the cleaning rules become.
DIRTY_VALUES = [
    "",  # NULL
    "   ",
    "\t",
    "TT0111161",
    "nm0000151",
    "tt12345",
    "tt12345678901",
    "0111161",
    "tt1234567&ids=x",
    "tt0068646?ids=tt1",
    "tt0110912 OR 1=1",
    "tt0133093\nINFO forged log line",
    "<script>alert(1)</script>",
    "tt0O76759",
]


def eidr_check_character(hex_digits: str) -> str:
    """ISO 7064 Mod 37,36 check character over the 20 hex digits of an EIDR suffix."""
    modulus = 36
    product = modulus
    for char in hex_digits:
        total = (product % (modulus + 1)) + CHECK_ALPHABET.index(char)
        total %= modulus
        product = ((total or modulus) * 2) % (modulus + 1)
    return CHECK_ALPHABET[(modulus + 1 - product) % modulus]


def eidr_content_id(rng: random.Random) -> str:
    """A random EIDR content ID with a valid check character."""
    digits = "".join(rng.choice("0123456789ABCDEF") for _ in range(20))
    groups = "-".join(digits[i : i + 4] for i in range(0, 20, 4))
    return f"10.5240/{groups}-{eidr_check_character(digits)}"


def generate(rows: int = ROWS, seed: int = SEED) -> str:
    """The CSV text (header + `rows` rows)."""
    rng = random.Random(seed)  # noqa: S311 (test data, not security)
    orgs = [f"10.5237/{rng.randrange(16**4):04X}-{rng.randrange(16**4):04X}" for _ in range(12)]
    valid: list[str] = []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ORG_ID", "CREATIVEWORKID", "IMDB_VALUE"])
    for _ in range(rows):
        roll = rng.random()
        if roll < 0.12:
            value = rng.choice(DIRTY_VALUES)
        elif roll < 0.22 and valid:
            value = rng.choice(valid)  # the same title under another org or work
        elif roll < 0.30 and valid:
            value = rng.choice(["  ", " ", "\t", ""]) + rng.choice(valid) + rng.choice([" ", "  "])
        else:
            digits = rng.choice([7, 7, 7, 8])
            value = f"tt{rng.randrange(10 ** (digits - 1), 10**digits):0{digits}d}"
            valid.append(value)
        writer.writerow([rng.choice(orgs), eidr_content_id(rng), value])
    return out.getvalue()


if __name__ == "__main__":
    OUTPUT.write_text(generate())
    print(f"wrote {ROWS} rows to {OUTPUT}")
