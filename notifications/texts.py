"""Words for people: field labels and values in Dutch and English, for notices and reminders."""

from __future__ import annotations

LANGUAGES = ("nl", "en")

LABELS = {
    "nl": {
        "discovered_at": "Datum en tijdstip constatering",
        "summary": "Samenvatting",
        "security_aspect": "Onderdeel van de beveiliging",
        "nature_how": "Hoe het zich heeft voorgedaan",
        "nature_actions": "Wat er met persoonsgegevens is gebeurd",
        "affected_systems": "Betrokken systemen",
        "cause_category": "Soort oorzaak",
        "cause_description": "Oorzaak",
        "measures": "Genomen maatregelen",
        "affected_groups": "Betrokkenen en gevolgen",
        "group_size": "Omvang van de groep betrokkenen",
        "records_count": "Aantal records",
        "data_kinds": "Soort gegevens",
        "data_kinds_other": "Overige gegevens",
        "data_unreadable": "Gegevens versleuteld of onleesbaar",
        "subjects_informed": "Betrokkenen geïnformeerd",
        "evaluation": "Evaluatie",
        "state": "Stand van zaken",
    },
    "en": {
        "discovered_at": "Date and time of discovery",
        "summary": "Summary",
        "security_aspect": "Part of security concerned",
        "nature_how": "How it happened",
        "nature_actions": "What happened to personal data",
        "affected_systems": "Systems affected",
        "cause_category": "Kind of cause",
        "cause_description": "Cause",
        "measures": "Measures taken",
        "affected_groups": "People affected and consequences",
        "group_size": "Size of the group affected",
        "records_count": "Number of records",
        "data_kinds": "Kinds of data",
        "data_kinds_other": "Other data",
        "data_unreadable": "Data encrypted or unreadable",
        "subjects_informed": "People affected informed",
        "evaluation": "Evaluation",
        "state": "Status",
    },
}

VALUES: dict[str, dict[str | bool, str]] = {  # bool: the words for yes and no
    "nl": {
        "read": "ingezien", "copied": "gekopieerd", "altered": "gewijzigd", "deleted": "verwijderd of vernietigd",
        "stolen": "gestolen",
        "unknown": "nog onbekend", "system_technical": "systeemtechnisch", "processor_internal":
        "oorzaak bij de verwerker", "user_error_admin": "gebruikersfout van een beheerder", "user_error_employee":
        "gebruikersfout van een medewerker", "negligence_parent": "nalatigheid van een ouder/verzorger",
        "pupils": "leerlingen", "parents": "ouders/verzorgers", "staff": "medewerkers", "other": "overig",
        "negligible": "verwaarloosbaar", "limited": "beperkt", "considerable": "aanzienlijk",
        "very_large": "zeer groot",
        "special_categories": "bijzondere persoonsgegevens", "citizen_service_number": "burgerservicenummer (BSN)",
        "access_identification": "toegangs- of identificatiegegevens", "financial": "financiële gegevens",
        "learning_performance": "leerprestaties", "contact": "contactgegevens",
        "parent_portal": "Ouderportaal", "plaza": "Plaza", "cms": "CMS", "website": "website",
        "reported": "gemeld", "triage": "in analyse", "containment": "wordt ingedamd",
        "remediation": "oorzaak wordt opgelost", "backup_restore": "gegevens worden hersteld",
        "verification": "oplossing wordt gecontroleerd", "evaluation": "wordt geëvalueerd",
        "ap_notification": "melding bij de AP", "closed": "afgesloten", "dismissed": "geen datalek",
        True: "ja", False: "nee",
        "new": "nieuwe melding", "preliminary": "voorlopige melding", "final": "definitieve melding",
        "supplement": "aanvulling of wijziging", "withdrawal": "intrekking",
        "racial_or_ethnic_origin": "ras of etnische afkomst", "political_opinions": "politieke opvattingen",
        "religious_or_philosophical_beliefs": "godsdienst of levensovertuiging",
        "trade_union_membership": "lidmaatschap van een vakbond", "genetic": "genetische gegevens",
        "biometric": "biometrische gegevens (ter identificatie)", "health": "gezondheid",
        "sex_life_or_orientation": "seksueel gedrag of seksuele gerichtheid", "criminal": "strafrechtelijke gegevens",
        "primary": "primair onderwijs", "secondary": "voortgezet onderwijs",
        "vocational": "middelbaar beroepsonderwijs (mbo)", "special": "(voortgezet) speciaal onderwijs",
        "confidentiality": "vertrouwelijkheid", "integrity": "integriteit", "availability": "beschikbaarheid",
    },
    "en": {
        "read": "read", "copied": "copied", "altered": "altered", "deleted": "deleted or destroyed",
        "stolen": "stolen",
        "unknown": "not yet known", "system_technical": "system-technical", "processor_internal":
        "caused at the processor", "user_error_admin": "user error of an administrator", "user_error_employee":
        "user error of an employee", "negligence_parent": "negligence of a parent/guardian",
        "pupils": "pupils", "parents": "parents/guardians", "staff": "staff", "other": "other",
        "negligible": "negligible", "limited": "limited", "considerable": "considerable", "very_large": "very large",
        "special_categories": "special categories of personal data", "citizen_service_number":
        "citizen service number (BSN)", "access_identification": "access or identification data",
        "financial": "financial data", "learning_performance": "learning performance", "contact": "contact details",
        "parent_portal": "Parent portal", "plaza": "Plaza", "cms": "CMS", "website": "website",
        "reported": "reported", "triage": "being analysed", "containment": "being contained",
        "remediation": "cause being fixed", "backup_restore": "data being restored",
        "verification": "fix being verified", "evaluation": "being evaluated",
        "ap_notification": "notifying the AP", "closed": "closed", "dismissed": "not a breach",
        True: "yes", False: "no",
        "new": "new notification", "preliminary": "preliminary notification", "final": "final notification",
        "supplement": "supplement or correction", "withdrawal": "withdrawal",
        "racial_or_ethnic_origin": "racial or ethnic origin", "political_opinions": "political opinions",
        "religious_or_philosophical_beliefs": "religious or philosophical beliefs",
        "trade_union_membership": "trade union membership", "genetic": "genetic data",
        "biometric": "biometric data (for identification)", "health": "health",
        "sex_life_or_orientation": "sex life or sexual orientation", "criminal": "criminal convictions and offences",
        "primary": "primary education", "secondary": "secondary education",
        "vocational": "secondary vocational education (mbo)", "special": "special education",
        "confidentiality": "confidentiality", "integrity": "integrity", "availability": "availability",
    },
}

UNKNOWN = {"nl": "nog in onderzoek", "en": "still under investigation"}

# Words of the pages and the timeline for what the engine names by code: triggers, kinds of AP
# notification and of contact, sources, responsibility, deadlines and the outbox's statuses.
_CODES: dict[str, dict[str | bool, str]] = {
    "nl": {
        "begin_triage": "analyse starten", "dismiss": "afwijzen", "confirm": "bevestigen", "contained":
        "ingedamd", "remediated": "opgelost", "restored": "hersteld", "verified": "gecontroleerd", "evaluated":
        "geëvalueerd", "ap_notified": "AP gemeld", "reopen": "heropenen",
        "preliminary": "voorlopige melding", "final": "definitieve melding", "supplement": "aanvulling",
        "withdrawal": "intrekking", "phone": "telefoon", "email": "e-mail",
        "letter": "brief", "school_portal": "schoolportaal of -app", "in_person": "persoonlijk gesprek",
        "people_informed": "betrokkenen geïnformeerd", "severity": "ernst van de gevolgen",
        "school": "de school", "third_party": "een derde", "monitoring": "monitoring", "processor": "de verwerker",
        "school_notice": "de school informeren", "ap_notice": "melding aan de AP", "school_ap_notice":
        "melding aan de AP door de school", "follow_up": "vervolgactie", "done": "gedaan", "dropped": "vervallen",
        "ok": "op schema", "due_soon": "verloopt binnenkort", "overdue": "verlopen", "met": "gehaald",
        "settled": "afgesloten zonder te halen",
        "pending": "wacht op verzending", "sending": "wordt verzonden", "accepted": "aangenomen door de mailserver",
        "sent": "verzonden", "dead": "niet bezorgd (opgegeven)",
    },
    "en": {
        "begin_triage": "begin triage", "dismiss": "dismiss", "confirm": "confirm", "contained": "contained",
        "remediated": "remediated", "restored": "restored", "verified": "verified", "evaluated": "evaluated",
        "ap_notified": "AP notified", "reopen": "reopen",
        "preliminary": "preliminary notification", "final": "final notification", "supplement": "supplement",
        "withdrawal": "withdrawal", "phone": "phone", "email": "email",
        "letter": "letter", "school_portal": "school portal or app", "in_person": "in person",
        "people_informed": "people affected informed", "severity": "severity of the consequences",
        "school": "the school", "third_party": "a third party", "monitoring": "monitoring", "processor":
        "the processor",
        "school_notice": "inform the school", "ap_notice": "notify the AP", "school_ap_notice":
        "the school notifies the AP", "follow_up": "follow-up action", "done": "done", "dropped": "dropped",
        "ok": "on track", "due_soon": "due soon", "overdue": "overdue", "met": "met", "settled":
        "closed without being met",
        "pending": "waiting to be sent", "sending": "being sent", "accepted": "accepted by the mail server",
        "sent": "sent", "dead": "not delivered (given up)",
    },
}
for _language, _words in _CODES.items():
    VALUES[_language] |= _words
