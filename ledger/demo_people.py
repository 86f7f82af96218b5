"""The invented people of the demo: names, e-mail addresses and phone numbers.

The seeds' notices say the controllers keep a newsletter subscriber's e-mail, a requester's
name and contact, a breach notice's contact person. The demo's events carry those in
``sealed`` (ledger/sealing.py), and the subject reference is the pseudonym of the e-mail
address, so the log itself never holds them in clear. ``People`` makes them
deterministically per controller, from its own random stream (the history's stream is
untouched, so the demo's findings do not move), and remembers every one it made: the
privacy scan (tests/core/test_privacy_scan.py) looks for each of them in every store.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

FIRST = ("Kari", "Ola", "Ingrid", "Lars", "Sofie", "Mads", "Astrid", "Jonas", "Nora",
         "Emil", "Frida", "Henrik", "Sigrid", "Magnus", "Ida", "Rasmus", "Liv", "Anders",
         "Maja", "Tobias", "Thea", "Kasper", "Solveig", "Mikkel")
LAST = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen",
        "Nilsen", "Kristiansen", "Jensen", "Berg", "Haugen", "Hagen", "Dahl", "Lund",
        "Bakke", "Solberg", "Strand", "Nielsen", "Mortensen", "Eriksen", "Lie")
#: Where a person's phone number is dialled: the controller's country.
PHONE_PREFIX = {"NO": ("+47", 8), "DK": ("+45", 8)}


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    phone: str


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


class People:
    """One person per key (``"subscriber-7"``, ``"requester-dsr-002"``), made on first ask."""

    def __init__(self, controller: str, country: str | None) -> None:
        self.controller = controller
        self.rnd = random.Random(f"{controller}/people")
        self.country = country or "NO"
        self.made: dict[str, Person] = {}

    def get(self, key: str) -> Person:
        if key not in self.made:
            first, last = self.rnd.choice(FIRST), self.rnd.choice(LAST)
            n = len(self.made)
            domain = self.controller.lower().replace("-", "") + ".example"
            prefix, digits = PHONE_PREFIX.get(self.country, PHONE_PREFIX["NO"])
            # Mobile numbers start with 4 or 9 in Norway, 2-6 in Denmark.
            lead = "9" if prefix == "+47" else "2"
            local = lead + "".join(str(self.rnd.randrange(10)) for _ in range(digits - 1))
            self.made[key] = Person(
                name=f"{first} {last}",
                email=f"{_ascii(first)}.{_ascii(last)}{n}@{domain}",
                phone=f"{prefix} {local[:3]} {local[3:5]} {local[5:]}")
        return self.made[key]
