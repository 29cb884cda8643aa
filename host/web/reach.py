"""An id in a URL outside the companies of the signed-in user is "not found", on every route.

``auth._guard`` calls ``check`` for every request, right after sign-in and before the role's
check, and it reads the URL's own parameters: a route added later is covered the day it is
added. A parameter not known here is refused to a limited user (fails closed) until its
company is written below. 404, not 403: staff of one client company must not learn that
another's order 4711 exists.
"""

from __future__ import annotations

from flask import abort, g, request

from host.web.context import access, db

#: how to find the company of each id a URL can carry
COMPANY_OF = {
    "company_id": "SELECT id FROM companies WHERE id = :id",
    "order_id": "SELECT company_id FROM orders WHERE id = :id",
    "job_id": "SELECT company_id FROM jobs WHERE id = :id",
    "shipment_id": "SELECT o.company_id FROM shipments s JOIN orders o ON o.id = s.order_id WHERE s.id = :id",
}


#: ids of things that belong to no company (an employee): only staff who reach every company
#: (admins) work on them, so a limited user gets 404 for them as for an unknown kind of id
EVERY_COMPANY_ONLY = frozenset({"user_id"})


def check() -> None:
    """Abort with 404 when an id of this request's URL is outside the user's companies."""
    if g.get("user") is None or not request.view_args:
        return
    reach = access()
    if reach.everything:
        return
    for name, value in request.view_args.items():
        sql = COMPANY_OF.get(name)
        if sql is None:
            abort(404)  # an id of a kind not known here: fail closed
        row = db().execute(sql, {"id": value}).fetchone()
        if row is None or not reach.allows(row[0]):
            abort(404)
