"""Cron expressions (five fields: minute hour day-of-month month day-of-week) read in a time zone,
through croniter: the next time, in the naive UTC the service keeps, strictly after a moment.
Daylight saving is the zone's: "0 8 * * *" in Europe/Paris is 07:00 UTC in winter, 06:00 in summer."""
import datetime as dt
import zoneinfo

from croniter import croniter


def valid_expression(expression):
    return len(expression.split()) == 5 and croniter.is_valid(expression)


def valid_zone(name):
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def next_time(expression, zone, after):
    """The first time after `after` (naive UTC) that `expression` matches in `zone`, naive UTC."""
    local = after.replace(tzinfo=dt.timezone.utc).astimezone(zoneinfo.ZoneInfo(zone))
    following = croniter(expression, local).get_next(dt.datetime)
    return following.astimezone(dt.timezone.utc).replace(tzinfo=None)
