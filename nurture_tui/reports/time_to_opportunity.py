"""Time to opportunity: days from a lead's creation to its first opportunity, nurtured versus non-nurtured
leads of the same cohort (created in the period; with `--segment`, members of that segment only).

- nurtured: the lead entered a sequence (any, or the `--sequence` one) before its first opportunity was
  created (before the end of the period when it has none). Everyone else in the cohort is non-nurtured.
- first opportunity: the earliest `opportunity.created_at` of the lead (`opportunity.lead_id`).
- median / p75 days: over the leads that have an opportunity (linear interpolation).
- share_90d: leads with an opportunity within 90 days of creation, over the cohort leads created at least
  90 days before the end of the period (`mature`: younger leads have not had 90 days yet).
- difference: median(nurtured) − median(non-nurtured) days (negative = nurtured leads convert sooner),
  with a 95 % percentile-bootstrap confidence interval (both groups resampled with replacement from a
  fixed seed; the interval excludes 0 ⇒ the difference is unlikely to be chance).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, case, func, select

from ..store.tables import enrollment, lead, opportunity
from .common import Report, Scope, days, has, make_report, quantile, r1, rate, segment_leads
from .stats import bootstrap_median_diff

NAME = "time-to-opportunity"
TITLE = "Time to opportunity: nurtured vs non-nurtured"
COLUMNS = ["group", "leads", "converted", "median_days", "p75_days", "mature", "within_90d", "share_90d"]
WINDOW = timedelta(days=90)
#: Bootstrap work is capped (resamples × sample size), so a big cohort stays interactive.
BOOTSTRAP_BUDGET = 2_000_000


def load(conn: Connection, scope: Scope) -> Report:
    p = scope.period
    o, e, lc = opportunity.c, enrollment.c, lead.c
    first = (select(o.lead_id.label("lead_id"), func.min(o.created_at).label("at"))
             .where(o.lead_id.is_not(None), o.created_at.is_not(None)).group_by(o.lead_id).subquery())
    enrolled = [e.lead_id == lc.id, e.entered_at < func.coalesce(first.c.at, p.until)]
    if scope.sequence_id is not None:
        enrolled.append(e.sequence_id == scope.sequence_id)
    nurtured = case((has(*enrolled), 1), else_=0).label("nurtured")
    where = [lc.created_at >= p.since, lc.created_at < p.until]
    seg = segment_leads(conn, scope)
    if seg is not None:
        where.append(lc.id.in_(seg))
    base = select(lc.id, lc.created_at, first.c.at.label("opp_at"), nurtured) \
        .select_from(lead.outerjoin(first, first.c.lead_id == lc.id)).where(*where).subquery()
    mature_cut = p.until - WINDOW
    counts = {int(r.nurtured): r for r in conn.execute(
        select(base.c.nurtured, func.count().label("n"),
               func.sum(case((base.c.created_at <= mature_cut, 1), else_=0)).label("mature"))
        .group_by(base.c.nurtured))}
    if not counts:
        return make_report(NAME, TITLE, scope, COLUMNS, [], empty="no leads were created in the period")
    samples: dict[int, list[float]] = {0: [], 1: []}
    within: dict[int, int] = {0: 0, 1: 0}
    for r in conn.execute(select(base.c.nurtured, base.c.created_at, base.c.opp_at)
                          .where(base.c.opp_at.is_not(None), base.c.opp_at >= base.c.created_at)):
        d = days(r.opp_at - r.created_at)
        samples[int(r.nurtured)].append(d)
        if r.created_at <= mature_cut and d <= WINDOW.days:
            within[int(r.nurtured)] += 1
    rows: list[dict[str, Any]] = []
    for flag, label in ((1, "nurtured"), (0, "non-nurtured")):
        c = counts.get(flag)
        n, mature = (int(c.n), int(c.mature or 0)) if c is not None else (0, 0)
        xs = samples[flag]
        rows.append({"group": label, "leads": n, "converted": len(xs), "median_days": r1(quantile(xs, 0.5)),
                     "p75_days": r1(quantile(xs, 0.75)), "mature": mature, "within_90d": within[flag],
                     "share_90d": rate(within[flag], mature)})
    summary = [_answer(samples[1], samples[0], rows)]
    return make_report(NAME, TITLE, scope, COLUMNS, rows, summary=summary,
                       samples={"nurtured": samples[1], "non-nurtured": samples[0]}, notes=[
        "cohort: leads created in the period; nurtured = entered a sequence before their first opportunity",
        "median/p75 over converted leads; share_90d = within_90d / mature (leads created ≥ 90 days before the end)",
        "difference CI: 95 % percentile bootstrap of the difference of medians (seeded)",
    ])


def _answer(nurt: list[float], other: list[float], rows: list[dict[str, Any]]) -> str:
    if not nurt or not other:
        missing = "nurtured" if not nurt else "non-nurtured"
        return f"no answer yet: no {missing} lead of this cohort has an opportunity"
    m1, m0 = quantile(nurt, 0.5), quantile(other, 0.5)
    assert m1 is not None and m0 is not None
    diff = m1 - m0
    resamples = max(200, min(2000, BOOTSTRAP_BUDGET // (len(nurt) + len(other))))
    ci = bootstrap_median_diff(nurt, other, resamples=resamples)
    where = "sooner" if diff < 0 else "later"
    text = (f"nurtured leads reached an opportunity in a median {m1:.1f} days vs {m0:.1f} for non-nurtured: "
            f"{abs(diff):.1f} days {where}")
    if ci is None:
        return text + " (too few converted leads for a confidence interval)"
    lo, hi = ci
    sure = ("the interval excludes 0: nurturing " + ("shortens" if diff < 0 else "lengthens") + " the cycle"
            if lo > 0 or hi < 0 else "the interval includes 0: no clear difference yet")
    return (text + f" (difference {diff:+.1f} d, 95 % CI {lo:+.1f} … {hi:+.1f} d, bootstrap of medians, "
            f"{resamples:,} resamples; n = {len(nurt):,} + {len(other):,} converted); {sure}")
