"""``make chaos``: the fault catalogue injected one fault at a time into a devstack under load, checked each time.

``stack`` starts and stops the devstack by PID, ``load`` is the order load and
its history, ``faults`` the catalogue, ``history`` the checks (plain SQL),
``run`` one phase, ``badinputs`` the malformed requests, ``report`` the table
of ``docs/reliability.md``.
"""
