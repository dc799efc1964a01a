"""A handler reports an incident and takes it from reported to closed through the pages only, by the
processor's path (the AP notification recorded on the page); a refused step shows what is missing and
keeps what was typed; the page is accessible at every stage."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from browser_support import accessible, screenshot, sign_in

from breachflow.workflow import queries
from breachflow.workflow.deadlines import local


def _step(page, trigger: str, fill=None, open_it: bool = True) -> None:
    """Open the form of ``trigger``, let ``fill`` fill it, and press its button."""
    box = page.locator(f"#form-trigger-{trigger}")
    if open_it and box.get_attribute("open") is None:
        box.locator("summary").click()
    form = box.locator("form")
    if fill:
        fill(form)
    with page.expect_navigation():
        form.get_by_role("button").click()


def _yes(form, label: str, answer: str = "ja") -> None:
    form.get_by_role("group", name=label).get_by_label(answer, exact=True).check()


def _state(site, reference: str) -> str:
    return queries.get(site.ctx, reference).state


def test_a_handler_takes_an_incident_from_report_to_closed_through_the_pages(page, site, tmp_path):
    sign_in(page, "hanna")
    page.goto("/incidents/new")
    accessible(page)
    page.get_by_label("Wie meldde het").select_option("monitoring")
    page.get_by_label("School (BRIN) 1").fill("12AB")
    page.get_by_label("Aantal betrokkenen 1").fill("30")
    discovered = local(datetime.now(UTC) - timedelta(hours=2))
    page.get_by_label("datum en tijd waarop het datalek is ontdekt").fill(f"{discovered:%Y-%m-%dT%H:%M}")
    page.get_by_label("samenvatting van het incident").fill("Cijferlijsten van groep 7 zichtbaar voor alle ouders")
    with page.expect_navigation():
        page.get_by_role("button", name="Melden", exact=True).click()
    reference = page.url.rsplit("/", 1)[1]
    assert _state(site, reference) == "reported"
    assert page.locator('svg g[data-current="true"]').get_attribute("data-state") == "reported"
    accessible(page)

    _step(page, "begin_triage")
    assert _state(site, reference) == "triage"

    _step(page, "confirm", lambda form: form.get_by_label("hoe het is gebeurd").fill("Een rechtencontrole ontbrak"))
    refused = page.locator("#form-trigger-confirm")
    assert "welke systemen van de verwerker zijn getroffen" in refused.locator(".alert").inner_text()
    assert refused.get_by_label("hoe het is gebeurd").input_value() == "Een rechtencontrole ontbrak"
    assert _state(site, reference) == "triage"

    def confirm(form):
        form.get_by_label("ingezien").check()
        form.get_by_label("Ouderportaal").check()
        form.get_by_label("categorie van de oorzaak").select_option("processor_internal")

    _step(page, "confirm", confirm, open_it=False)
    assert _state(site, reference) == "containment"
    accessible(page)

    _step(page, "contained", lambda form: form.get_by_label("maatregelen genomen").fill("Klassenpagina uitgezet"))

    def remediated(form):
        form.get_by_label("de oorzaak, beschreven").fill("Release 4.2 liet de groepscontrole weg")
        form.get_by_label("de oplossing voor de oorzaak").fill("Controle hersteld, regressietest toegevoegd")
        _yes(form, "de oplossing is grondig getest")
        _yes(form, "zijn gegevens verloren gegaan of gewijzigd")

    _step(page, "remediated", remediated)
    assert _state(site, reference) == "backup_restore"

    def restored(form):
        form.get_by_label("welke back-up is teruggezet").fill("Nachtelijke back-up van 02:00")
        _yes(form, "de back-up is op juistheid gecontroleerd")

    _step(page, "restored", restored)

    def verified(form):
        _yes(form, "de oplossing is doorgevoerd")
        _yes(form, "het systeem werkt aantoonbaar weer")

    _step(page, "verified", verified)
    assert _state(site, reference) == "evaluation"

    deadline = time.monotonic() + 30  # the worker sends the first notice: then the school is informed
    while queries.get(site.ctx, reference).schools[0].informed_at is None:
        assert time.monotonic() < deadline, "the first notice to the school was not sent"
        time.sleep(0.3)
    page.reload()

    def evaluated(form):
        form.get_by_label("evaluatie van de afhandeling").fill("Binnen een uur gezien; releasechecklist uitgebreid")
        pupils = form.get_by_role("group", name="leerlingen")
        pupils.get_by_label("Deze groep is getroffen").check()
        pupils.get_by_label("Gevolgen voor deze groep").fill("Cijfers gezien door andere ouders")
        pupils.get_by_label("Ernst").select_option("limited")
        form.get_by_label("contactgegevens").check()
        form.get_by_label("aantal betrokkenen (ondergrens)").fill("28")
        form.get_by_label("aantal betrokkenen (bovengrens)").fill("30")

    _step(page, "evaluated", evaluated)
    assert _state(site, reference) == "ap_notification"
    page.locator("#form-ap").get_by_label("Meldnummer van de AP").fill("AP-M-2026-0042")
    with page.expect_navigation():
        page.locator("#form-ap form").get_by_role("button").click()
    assert queries.get(site.ctx, reference).ap_notifications[0].ap_reference == "AP-M-2026-0042"
    assert "definitieve melding" in page.locator(".timeline").inner_text()
    accessible(page)
    screenshot(page, "incident", tmp_path)

    def ap_form(form):
        _yes(form, "waren de gegevens versleuteld of anderszins onleesbaar", "nee")
        _yes(form, "zijn de betrokkenen geïnformeerd", "nee")

    _step(page, "ap_notified", ap_form)  # saying "no" makes the reason needed: refused, and asked for
    asked = page.locator("#form-trigger-ap_notified")
    assert "waarom de betrokkenen niet zijn geïnformeerd" in asked.locator(".alert").inner_text()
    assert asked.get_by_role("group", name="zijn de betrokkenen geïnformeerd").get_by_label("nee").is_checked()
    _step(page, "ap_notified", lambda form: form.get_by_label("waarom de betrokkenen niet zijn geïnformeerd").fill(
        "Laag risico: alleen namen en groepen"), open_it=False)
    assert _state(site, reference) == "closed"
    assert page.locator('svg g[data-current="true"]').get_attribute("data-state") == "closed"
    timeline = page.locator(".timeline").inner_text()
    assert "AP gemeld: melding bij de AP → afgesloten" in timeline and "datetime.datetime" not in timeline
    accessible(page)
