"""Every mail labcloud sends, as plain text: one template per event, in this one module.

A template takes the event's loaded payload and returns (subject, body). Texts say what happened
and what to do next; they never carry anything a reader of the mail could not already see in the
portal, except the one-time password links, which are why those mails exist."""
import string
import textwrap

SIGNATURE = "\n-- \nlabcloud (this mail was sent automatically; replies are not read)\n"
# Why the mail came, and, when it can be turned off, where: security mail cannot be.
FOOTER_OPTIONAL = ("You get this mail because {kind} notifications are on for your account; turn "
                   "them off on your account page or with `labcloud notifications disable {kind}`.")
FOOTER_SECURITY = ("Security notifications cannot be turned off: they carry links to set your "
                   "password. If you did not expect this mail, tell your labcloud administrator.")

TEMPLATES = {
    "user_approved": (
        "Your labcloud account is approved",
        "Hello $name,\n\nyour labcloud account '$username' has been approved: you can log in and "
        "create instances now.\n"),
    "user_rejected": (
        "Your labcloud sign-up was not approved",
        "Hello $name,\n\nyour request for the labcloud account '$username' was not approved.\n"
        "Reason given: $reason\n"),
    "user_created": (
        "Your labcloud account: set your password",
        "Hello $name,\n\nan administrator made you the labcloud account '$username'. Choose your "
        "password with this one-time link (it works once and expires):\n\n  $password_link\n"),
    "user_imported": (
        "Your labcloud account: set your password",
        "Hello $name,\n\nyou were given the labcloud account '$username' for a course. Choose your "
        "password with this one-time link (it works once and expires):\n\n  $password_link\n"),
    "user_password_reset": (
        "labcloud: your password was reset",
        "Hello $name,\n\nan administrator reset the password of your labcloud account '$username': "
        "the old one no longer works. Choose a new one with this one-time link (it works once and "
        "expires):\n\n  $password_link\n"),
    "instance_ready": (
        "Your instance $instance is ready",
        "Your instance '$instance' ($instance_id) is running and answers on SSH.\n"),
    "instance_failed": (
        "Your instance $instance failed",
        "Your instance '$instance' ($instance_id) is in error.\nReason: $reason\n"),
    "alarm_state": (
        "labcloud alarm $alarm: $new_state",
        "Your alarm '$alarm' (#$alarm_id) went from $old_state to $new_state.\n\n"
        "On: $target\nMetric: $metric ($statistic)\nThreshold: $comparison $threshold\nValue: $value\n"
        "Reason: $reason\n\nIts history: `labcloud alarm history $alarm_id`.\n"),
}


def render(event, kind, values, optional):
    """(subject, body) of the mail for `event`; `values` fill the template's $names (a missing one
    is left as it is rather than failing the mail), `optional` says whether the kind can be turned
    off (it picks the footer)."""
    subject, body = TEMPLATES[event]
    values = {key: "-" if value is None else str(value) for key, value in values.items()}
    footer = FOOTER_OPTIONAL.format(kind=kind) if optional else FOOTER_SECURITY
    text = _wrap(string.Template(body).safe_substitute(values) + "\n" + footer + "\n") + SIGNATURE
    # A header must stay one line, whatever a name holds.
    subject = " ".join(string.Template(subject).safe_substitute(values).split())
    return subject[:255], text


def _wrap(text, width=72):
    """Lines short enough to travel as plain 7-bit text; indented lines (links) stay whole."""
    lines = []
    for line in text.split("\n"):
        lines += [line] if line.startswith(" ") or len(line) <= width else textwrap.wrap(line, width)
    return "\n".join(lines)
