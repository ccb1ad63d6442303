"""Parses an iCalendar file with the `icalendar` package, as another team's
tool would read FitFlow's calendar export, and prints what it found as JSON.

Usage: parse_ics.py FILE

Prints {"version", "prodid", "events": [{"uid", "summary", "status",
"sequence", "start", "end", "dtstamp"}]} with times in ISO 8601 (UTC, "+00:00").
Exits non-zero when the file does not parse, a required property is missing,
or a time is not a UTC date-time.
"""

import datetime
import json
import sys

import icalendar


def utc(component, name):
    value = component.decoded(name)
    if not isinstance(value, datetime.datetime) or value.utcoffset() != datetime.timedelta(0):
        raise SystemExit(f"{name} is not a UTC date-time: {value!r}")
    return value.isoformat()


def main(path):
    with open(path, "rb") as file:
        raw = file.read()
    # Strict: icalendar raises on a malformed content line.
    calendar = icalendar.Calendar.from_ical(raw)
    if calendar.name != "VCALENDAR":
        raise SystemExit(f"not a VCALENDAR: {calendar.name}")
    errors = [error for component in calendar.walk() for error in getattr(component, "errors", [])]
    if errors:
        raise SystemExit(f"icalendar reported errors: {errors!r}")
    events = []
    for event in calendar.walk("VEVENT"):
        events.append(
            {
                "uid": str(event["UID"]),
                "summary": str(event["SUMMARY"]),
                "status": str(event["STATUS"]),
                "sequence": int(event["SEQUENCE"]),
                "start": utc(event, "DTSTART"),
                "end": utc(event, "DTEND"),
                "dtstamp": utc(event, "DTSTAMP"),
            }
        )
    print(
        json.dumps(
            {
                "version": str(calendar["VERSION"]),
                "prodid": str(calendar["PRODID"]),
                "events": events,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
