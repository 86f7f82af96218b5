"""Legal rules as small pure functions over data tables (see docs/legal-rules.md).

- ``calendar``: working days and public holidays of a controller's country;
- ``rights``: Art. 12(3) deadlines, Regulation 1182/71 month arithmetic, identity policy;
- ``breach``: Art. 33 72-hour deadline, breach state and Art. 33–34 obligations;
- ``transfers``: Chapter V transfer verdicts from ``schemas/legal`` tables.
"""
