"""The cost report as text lines (the command, the weekly summary)."""

from operations.cost import PRICING, cents
from scaling.models import UNCONFIRMED_PRICE


def _short(plan_name):
    return plan_name.split(":", 1)[-1]


def cost_report_lines(report):
    lines = [
        f"Cost from {report.since:%Y-%m-%d %H:%M:%S} to {report.until:%Y-%m-%d %H:%M:%S} UTC ({PRICING})",
        "",
        f"{'instance':<24} {'plans used':<32} {'cost':>10} {'at max plan':>24} {'at highest used':>24} {'saved':>10}",
    ]
    for row in report.instances:
        used = ", ".join(dict.fromkeys(_short(p.plan) for p in row.periods))
        lines.append(
            f"{row.instance:<24} {used[:32]:<32} {'$' + str(cents(row.cost)):>10} "
            f"{'$' + str(cents(row.cost_at_max_plan)) + ' (' + _short(row.max_plan) + ')':>24} "
            f"{'$' + str(cents(row.cost_at_highest_plan)) + ' (' + _short(row.highest_plan) + ')':>24} "
            f"{'$' + str(cents(row.savings)):>10}"
        )
    if not report.instances:
        lines.append("(no instance was registered in this window)")
    lines += [
        "",
        f"{'total':<24} {'':<32} {'$' + str(cents(report.total('cost'))):>10} "
        f"{'$' + str(cents(report.total('cost_at_max_plan'))):>24} {'$' + str(cents(report.total('cost_at_highest_plan'))):>24} "
        f"{'$' + str(cents(report.total('savings'))):>10}",
    ]
    return lines + unconfirmed_prices_lines(report)


def unconfirmed_prices_lines(report):
    """A blank line and one naming the plans whose price nobody confirmed, if there are any."""
    if not report.unconfirmed_prices:
        return []
    return ["", f"{UNCONFIRMED_PRICE.capitalize()}s in these figures (nobody confirmed them; "
                f"load_plans --from-heroku reads Heroku's): {', '.join(map(_short, report.unconfirmed_prices))}"]
