"""The Change Log page (issue 24, item 5): who in words (a person, ``Operator (cli:root)``,
``cartplugin (automatic)``) and a Who filter, over real HTTP against the Back Market Pro sandbox;
whoever ships an order, from the browser or the command line, the Change Log says who."""

from __future__ import annotations

import getpass
import html
import re

from support import API_KEY
from web_support import signed_in

CLI_WORDS = f"Operator (cli:{getpass.getuser()})"


def _rows(page: str) -> list[str]:
    """The Change Log's rows as text, newest first."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [html.unescape(re.sub(r"<[^>]+>", " ", row)) for row in body.split("<tr>")[1:]]


def _ship_form(http, web, order_id: int, tracking: str) -> dict[str, str]:
    page = http.get(f"{web.url}/orders/{order_id}", timeout=10).text
    form = {"csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)}
    form.update({"carrier": "UPS", "tracking_number": tracking})
    return form


def test_the_change_log_says_who_in_words_and_filters_by_who(web, run, company, sandbox):
    run("import-orders", company)
    first, second = run.json("orders", "list")[:2]
    run("orders", "ship", str(first["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    sandbox.cancel_order(second["source_order_id"], api_key=API_KEY)
    run("worker", "--once", "--download-every", "0", "--processes", "1")
    walt, _ = signed_in(web, "walt")  # warehouse: ships in the browser
    third = run.json("orders", "list")[2]
    shipped = walt.post(f"{web.url}/orders/{third['id']}/ship",
                        data=_ship_form(walt, web, third["id"], "1Z999AA10123456793"), timeout=10)  # fmt: skip
    assert shipped.status_code == 200 and "Fully Shipped" in shipped.text

    ann, _ = signed_in(web, "ann")
    everyone = _rows(ann.get(f"{web.url}/audit", timeout=10).text)
    shipped_rows = [row for row in everyone if "order shipped" in row]
    assert len(shipped_rows) == 2  # who shipped which order, from the browser and the command line
    assert "walt order shipped" in " ".join(shipped_rows[0].split())
    assert third["source_order_id"] in shipped_rows[0]
    assert CLI_WORDS in shipped_rows[1] and first["source_order_id"] in shipped_rows[1]
    assert any("cartplugin (automatic)" in row and "order cancelled on the channel" in row for row in everyone)
    assert any("cartplugin (automatic)" in row and "Source Updated for Shipping" in row for row in everyone)
    assert not any(API_KEY in row or API_KEY[-6:] in row for row in everyone)

    by_cli = _rows(ann.get(f"{web.url}/audit?who=cli", timeout=10).text)
    assert by_cli and all(CLI_WORDS in row for row in by_cli)
    automatic = _rows(ann.get(f"{web.url}/audit?who=system", timeout=10).text)
    assert automatic and all("cartplugin (automatic)" in row for row in automatic)
    page = ann.get(f"{web.url}/companies/1/change-log?who=web", timeout=10).text
    by_web = _rows(page)
    assert by_web and all(" walt " in row for row in by_web) and not any("cartplugin (automatic)" in r for r in by_web)
    assert '<option value="web" selected>Web admin</option>' in page
    assert "cartplugin import" not in page and "cartplugin orders" not in page  # no command line in staff words
    # a Who the filter does not know shows everyone, as the page without it
    assert len(_rows(ann.get(f"{web.url}/audit?who=root'--", timeout=10).text)) == len(everyone)


def _entry(db, at: str, actor: str, source: str, action: str, company_id) -> None:
    db.execute(
        "INSERT INTO audit_log (at, actor, source, action, company_id, target, details) "
        "VALUES (:at, :actor, :source, :action, :company, :target, '{}')",
        {
            "at": at,
            "actor": actor,
            "source": source,
            "action": action,
            "company": company_id,
            "target": f"{action} target",
        },
    )


def test_the_change_log_filters_by_company_user_kind_and_dates_and_keeps_its_retention(
    web, run, db_target, monkeypatch
):
    from host.jobs import scheduler
    from host.records import audit
    from host.store.db import connect, write

    run("companies", "add", "Acme")
    run("companies", "add", "Beta")
    db = connect(db_target)
    acme, beta = (row[0] for row in db.execute("SELECT id FROM companies ORDER BY name").fetchall())
    with write(db):
        _entry(db, "2026-11-02T09:00:00.000000Z", "sue", "web", "order shipped", acme)
        _entry(db, "2026-11-20T09:00:00.000000Z", "walt", "web", "order shipped", beta)
        _entry(db, "2026-11-21T23:59:59.000000Z", "cli:root", "cli", "Cart General saved", acme)
        _entry(db, "2020-01-01T00:00:00.000000Z", "sue", "web", "Cart General saved", acme)  # past its retention
    ann, _ = signed_in(web, "ann")

    def shown(query: str) -> list[str]:
        page = ann.get(f"{web.url}/audit?{query}", timeout=10).text
        return [row for row in _rows(page) if " target" in row]

    assert len(shown("")) == 4
    assert [r.split()[-2] for r in shown(f"company={acme}&kind=order+shipped")] == ["shipped"]
    assert all("sue" in r for r in shown("user=SUE")) and len(shown("user=SUE")) == 2  # any letter case
    assert len(shown("from=2026-11-20&to=2026-11-21")) == 2  # both days whole, UTC
    assert len(shown(f"company={acme}&from=2026-11-01&to=2026-11-30&who=cli")) == 1
    company_tab = ann.get(f"{web.url}/companies/{beta}/change-log?kind=order+shipped", timeout=10).text
    assert [r for r in _rows(company_tab) if " target" in r] and "sue" not in company_tab.split("<tbody>", 1)[1]
    refused = ann.get(f"{web.url}/audit?from=yesterday", timeout=10).text
    assert (
        "From must be a date written YYYY-MM-DD." in refused and len([r for r in _rows(refused) if " target" in r]) == 4
    )

    monkeypatch.setenv("CARTPLUGIN_CHANGE_LOG_RETENTION_DAYS", "365")
    monkeypatch.setattr(scheduler, "_next_purge_at", 0.0)
    scheduler.purge_if_due(db)
    kept = [row[0] for row in db.execute("SELECT at FROM audit_log WHERE target LIKE '% target'").fetchall()]
    assert len(kept) == 3 and not any(at.startswith("2020") for at in kept)
    assert audit.purge(db, 0) == 0  # 0 keeps every entry
