"""Signing in with a real browser, keyboard only, and the sign-in page's accessibility."""

from __future__ import annotations

from browser_support import PASSWORD, accessible


def test_a_handler_signs_in_with_the_keyboard_and_out_again(page):
    page.goto("/account")
    assert "/signin" in page.url
    accessible(page)
    page.keyboard.type("hanna")  # the username field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/account")
    accessible(page)
    page.get_by_role("button", name="Afmelden").click()
    page.wait_for_url("**/signin")


def test_the_language_switch_turns_the_page_english(page):
    page.goto("/signin")
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.get_by_label("Username").is_visible()
    accessible(page)
