"""Child process for the kill -9 test: appends forever, printing each acknowledged id."""

from __future__ import annotations

import sys
from pathlib import Path

from ledger.envelope import complete
from ledger.service import Ledger
from ledger.signing import load_private_key


def main() -> None:
    data_dir, key_file, controller = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    key = load_private_key(key_file)
    ledger = Ledger.open(data_dir, verifier_workers=0)
    n = 0
    while True:
        batch = []
        for _ in range(25):
            n += 1
            batch.append(complete({"type": "processing.performed", "controller": controller,
                                   "data": {"activity_id": "a", "basis": "A6-1-b",
                                            "data_categories": ["contact"],
                                            "subject_count": n}}, key, "crm"))
        for res in ledger.submit(batch):
            assert res.status == "accepted", res
            sys.stdout.write(f"{res.event_id} {res.index}\n")
        sys.stdout.flush()  # only now is the batch acknowledged to the parent


if __name__ == "__main__":
    main()
