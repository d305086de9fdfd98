"""The cost report in the admin (`/admin/cost/`): the same figures as `manage.py cost_report`."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone

from operations.cost import PRICING, BadReportWindow, cents, cost_report_build, report_window
from scaling.models import UNCONFIRMED_PRICE


def month_to_date_costs(*, now):
    """Totals of this month so far (UTC), for the admin overview: two queries."""
    report = cost_report_build(since=report_window(since_text=None, until_text=None, now=now)[0], until=now)
    return {name: cents(report.total(name)) for name in ("cost", "cost_at_max_plan", "savings")} | {"since": report.since}


def cost_report_view(request):
    if not request.user.has_perm("scaling.view_redisinstance"):
        raise PermissionDenied
    now = timezone.now()
    since_text, until_text = request.GET.get("since", "").strip()[:40], request.GET.get("until", "").strip()[:40]
    error, report = "", None
    try:
        since, until = report_window(since_text=since_text, until_text=until_text, now=now)
        report = cost_report_build(since=since, until=until)
    except BadReportWindow as bad:
        error = str(bad)
    rows = [
        {
            "instance": row.instance, "app": row.app,
            "plans": list(dict.fromkeys(p.plan.split(":", 1)[-1] for p in row.periods)),
            "cost": cents(row.cost), "cost_at_max_plan": cents(row.cost_at_max_plan), "max_plan": row.max_plan,
            "cost_at_highest_plan": cents(row.cost_at_highest_plan), "highest_plan": row.highest_plan,
            "savings": cents(row.savings),
            "unconfirmed_prices": [name.split(":", 1)[-1] for name in row.unconfirmed_prices],
        }
        for row in (report.instances if report else [])
    ]
    totals = {name: cents(report.total(name)) for name in ("cost", "cost_at_max_plan", "cost_at_highest_plan", "savings")} if report else {}
    context = {
        **admin.site.each_context(request),
        "title": "Cost report",
        "subtitle": None,
        "report": report, "rows": rows, "unconfirmed_price": UNCONFIRMED_PRICE,
        "unconfirmed_prices": [name.split(":", 1)[-1] for name in report.unconfirmed_prices] if report else [], "totals": totals, "error": error, "pricing": PRICING,
        "since_text": since_text, "until_text": until_text,
    }
    return TemplateResponse(request, "operations/admin/cost_report.html", context)
