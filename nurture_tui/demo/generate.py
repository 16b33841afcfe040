"""The demo workspace: a deterministic (seeded) synthetic company's marketing database.

`build_demo(ws, leads=N, seed=S)` fills an empty workspace with
- users: an admin, a marketing-ops operator and a dozen sales reps in AMER/EMEA/APAC rep groups
  (territory rules by country, round-robin inside);
- accounts (about one per eight leads; ~3 % are ABM named accounts, bigger, with an owner);
- leads with personas, persona-consistent titles, industries, countries with IANA time zones, lead
  sources, funnel stages, Salesforce lead statuses, owners, a few opt-outs and bounces;
- campaigns with members, and opportunities for a fraction of accounts (more for named accounts);
- 90 days of engagement history: email sends followed, at persona- and stage-dependent rates, by opens
  (a few flagged as scanner bots), clicks, page views and form fills; unsubscribes and bounces for the
  leads that opted out or bounced. `activities=` sets the total number of activity rows exactly.
Then the real scoring code computes scores from that history and grades from the demo grade profiles.

Everything is drawn column-wise from one `random.Random(seed)`: the same seed gives the same workspace.
Rows are bulk-loaded (see `bulk.py`), so a million leads take well under a minute.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from ..batching import chunks
from ..errors import NurtureError
from ..store import meta, rollups
from ..store.engine import write_tx
from ..store.models import GRADES
from ..store.tables import (
    account,
    activity,
    campaign,
    campaign_member,
    lead,
    opportunity,
    rep_group,
    user,
)
from . import data as D
from .bulk import BulkWriter

if TYPE_CHECKING:
    from ..workspace import Workspace

#: Bump when the generator's output changes, so `nurture demo` rebuilds instead of reusing.
GENERATOR_VERSION = 1
META_KEY = "demo"
HISTORY_DAYS = 90
CHUNK = 20_000
#: Activity rows one touch makes on average (so the first pass lands just under the target).
ROWS_PER_TOUCH = 1.9

#: progress(phase, done, total)
DemoProgress = Callable[[str, int, int], None]

#: How engaged each persona is: (relative touch frequency, open rate, click rate given an open).
PERSONA_BEHAVIOUR = {
    "economic_buyer": (0.6, 0.18, 0.10),
    "technical_evaluator": (1.0, 0.32, 0.22),
    "practitioner": (1.4, 0.40, 0.30),
}
STAGE_ACTIVITY = {"awareness": 1.0, "consideration": 1.6, "decision": 2.4, "customer": 0.8}

#: The demo's fit model (installed as grade profiles; scoring grades every lead from it).
DEMO_GRADE_PROFILES: list[dict[str, Any]] = [
    {
        "name": "demo fit",
        "criteria": [
            {"field": "persona", "op": "in", "value": ["economic_buyer"], "steps": 4},
            {"field": "persona", "op": "in", "value": ["technical_evaluator"], "steps": 3},
            {"field": "industry", "op": "in", "value": ["software", "financial services", "healthcare",
                                                       "telecommunications"], "steps": 2},
            {"field": "employees", "op": "between", "value": [200, 100000], "steps": 2},
            {"field": "country", "op": "in", "value": ["united states", "united kingdom", "germany", "canada"],
             "steps": 1},
        ],
    }
]


@dataclass(frozen=True)
class DemoSummary:
    leads: int
    accounts: int
    named_accounts: int
    users: int
    rep_groups: int
    campaigns: int
    campaign_members: int
    opportunities: int
    activities: int
    mqls: int
    seed: int
    seconds: float
    reused: bool = False

    def lines(self) -> list[str]:
        head = "reused the demo workspace" if self.reused else f"built the demo workspace in {self.seconds:.1f} s"
        return [
            f"{head} (seed {self.seed}):",
            f"  {self.leads:,} leads in {self.accounts:,} accounts ({self.named_accounts:,} named accounts)",
            f"  {self.activities:,} activities over the last {HISTORY_DAYS} days, {self.mqls:,} MQLs",
            f"  {self.users:,} users in {self.rep_groups} rep groups, {self.campaigns} campaigns "
            f"({self.campaign_members:,} members), {self.opportunities:,} opportunities",
        ]

    def params(self) -> dict[str, Any]:
        return asdict(self)


def default_activities(leads: int) -> int:
    return leads * 2


def is_demo(ws: Workspace) -> bool:
    """Was this workspace made by `build_demo` (finished or not)?"""
    with ws.engine.connect() as conn:
        return isinstance(meta.get(conn, META_KEY), dict)


def stored_demo(ws: Workspace) -> DemoSummary | None:
    """The summary a previous `build_demo` stored in this workspace, if it is a demo workspace."""
    with ws.engine.connect() as conn:
        raw = meta.get(conn, META_KEY)
    if not isinstance(raw, dict) or raw.get("generator") != GENERATOR_VERSION:
        return None
    fields = {k: raw[k] for k in DemoSummary.__dataclass_fields__ if k in raw}
    try:
        return DemoSummary(**fields)
    except TypeError:
        return None


@functools.lru_cache(maxsize=4096)
def _slug(text_: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text_.lower().replace("ü", "u").replace("ë", "e").replace("ø", "o"))


class _Gen:
    def __init__(self, ws: Workspace, n_leads: int, seed: int, n_activities: int,
                 progress: DemoProgress | None) -> None:
        self.ws = ws
        self.n = n_leads
        self.seed = seed
        self.n_activities = n_activities
        self.rnd = random.Random(seed)
        self.progress = progress or (lambda phase, done, total: None)
        self.now = ws.clock.now()
        self.now_ts = self.now.timestamp()
        self.n_accounts = max(3, n_leads // 8)

    # -- users and rep groups ----------------------------------------------------------------------------

    def users(self, w: BulkWriter) -> None:
        rows: list[tuple[Any, ...]] = [
            (1, self.ws.user, "Demo Admin", "admin@example.com", "admin", self.now_ts),
            (2, "marketing-ops", "Morgan Ops", "ops@example.com", "operator", self.now_ts),
        ]
        self.reps_by_region: dict[str, list[int]] = {r: [] for r in D.REGIONS}
        regions = list(D.REGIONS)
        for i, name in enumerate(D.REP_NAMES):
            uid = 3 + i
            first, last = name.split(" ", 1)
            username = f"{first}.{last}".lower()
            rows.append((uid, username, name, f"{username}@example.com", "rep", self.now_ts))
            self.reps_by_region[regions[i % len(regions)]].append(uid)
        w.insert(user, ("id", "username", "name", "email", "role", "created_at"), rows, {"created_at": "dt"})
        groups = [(i + 1, f"{region} Reps", members, 0, {"country": list(D.REGIONS[region])})
                  for i, (region, members) in enumerate(self.reps_by_region.items())]
        w.insert(rep_group, ("id", "name", "member_ids", "rr_cursor", "rules"), groups,
                 {"member_ids": "json", "rules": "json"})
        self.n_users = len(rows)
        self.region_of = {country: region for region, countries in D.REGIONS.items() for country in countries}

    # -- accounts ----------------------------------------------------------------------------------------

    def accounts(self, w: BulkWriter) -> None:
        rnd, n = self.rnd, self.n_accounts
        self.acc_loc = rnd.choices(range(len(D.LOCATIONS)), weights=[loc[3] for loc in D.LOCATIONS], k=n)
        self.acc_industry = rnd.choices(range(len(D.INDUSTRIES)), weights=D.INDUSTRY_WEIGHTS, k=n)
        self.acc_named = [rnd.random() < 0.03 for _ in range(n)]
        self.acc_employees = [int(rnd.lognormvariate(5.0, 1.6)) + 5 for _ in range(n)]
        self.acc_name: list[str] = []
        self.acc_domain: list[str] = []
        self.acc_owner: list[int | None] = []
        np_, nr, nk, na = len(D.COMPANY_PREFIXES), len(D.COMPANY_ROOTS), len(D.COMPANY_KINDS), len(D.COMPANY_AREAS)
        order = list(range(np_ * nr * nk))
        rnd.shuffle(order)
        rows = []
        rr = dict.fromkeys(D.REGIONS, 0)
        for i in range(n):
            combo, wrap = order[i % len(order)], i // len(order)
            p, rest = divmod(combo, nr * nk)
            r, k = divmod(rest, nk)
            area = D.COMPANY_AREAS[wrap % na]
            base = f"{D.COMPANY_PREFIXES[p]}{D.COMPANY_ROOTS[r]} {D.COMPANY_KINDS[k]}"
            if area:
                base += f" {area}"
            if wrap >= na:
                base += f" {wrap // na + 1}"
            country, _city, tz, _, legal = D.LOCATIONS[self.acc_loc[i]]
            name = f"{base} {legal}"
            domain = f"{_slug.__wrapped__(base)}.{'com' if country == 'United States' else 'io'}"
            if self.acc_named[i]:
                self.acc_employees[i] = max(self.acc_employees[i], 1000) * 3
            region = self.region_of[country]
            reps = self.reps_by_region[region]
            owner = None
            if self.acc_named[i] or rnd.random() < 0.5:
                owner = reps[rr[region] % len(reps)]
                rr[region] += 1
            self.acc_name.append(name)
            self.acc_domain.append(domain)
            self.acc_owner.append(owner)
            created = int(self.now_ts - rnd.uniform(120, 900) * 86400)
            rows.append((i + 1, name, domain, D.INDUSTRIES[self.acc_industry[i]], self.acc_employees[i], country,
                         tz, owner, self.acc_named[i], created, created))
        cols = ("id", "name", "domain", "industry", "employees", "country", "timezone", "owner_id",
                "named_account", "created_at", "updated_at")
        for part in chunks(rows, CHUNK):
            w.insert(account, cols, part, {"created_at": "dt", "updated_at": "dt"})
        self.n_named = sum(self.acc_named)

    # -- leads -------------------------------------------------------------------------------------------

    def leads(self, w: BulkWriter) -> None:
        """Leads and, chunk by chunk, their engagement history: each lead's activities are generated
        before the lead row is written, so its last-activity time and score go in with it."""
        rnd, n, na = self.rnd, self.n, self.n_accounts
        firsts = rnd.choices(D.FIRST_NAMES, k=n)
        lasts = rnd.choices(D.LAST_NAMES, k=n)
        self.persona = rnd.choices(range(3), weights=D.PERSONA_WEIGHTS, k=n)
        self.stage = rnd.choices(range(len(D.STAGES)), weights=D.STAGE_WEIGHTS, k=n)
        sources = rnd.choices(D.LEAD_SOURCES, weights=D.LEAD_SOURCE_WEIGHTS, k=n)
        title_pick = [rnd.random() for _ in range(n)]
        moved = [rnd.random() < 0.12 for _ in range(n)]  # works away from the account's home office
        locs = rnd.choices(range(len(D.LOCATIONS)), weights=[loc[3] for loc in D.LOCATIONS], k=n)
        now_s = int(self.now_ts)
        created = self.created = [now_s - int(rnd.random() * 720 * 86400) for _ in range(n)]
        flags = [rnd.random() for _ in range(n)]
        titles = [D.TITLES[p] for p in D.PERSONAS]
        cols = ("id", "email", "first_name", "last_name", "title", "company", "phone", "account_id", "industry",
                "employees", "country", "city", "timezone", "lead_source", "status", "owner_id", "persona",
                "stage", "opted_out", "bounced", "custom", "created_at", "updated_at", "last_activity_at", "score")
        kinds = {"created_at": "dt", "updated_at": "dt", "last_activity_at": "dt"}
        explained = [(i + 1, "unsubscribe" if f < 0.015 else "bounce") for i, f in enumerate(flags) if f < 0.023]
        history = _History(self, w, explained)
        self.opted_out: list[int] = []
        self.bounced: list[int] = []
        rows: list[tuple[Any, ...]] = []
        done = 0
        for i in range(n):
            acc = i % na
            nth = i // na
            first, last = firsts[i], lasts[i]
            local = _slug(first) + "." + _slug(last)
            email = f"{local}@{self.acc_domain[acc]}" if nth == 0 else f"{local}{nth}@{self.acc_domain[acc]}"
            p = self.persona[i]
            ptitles = titles[p]
            title = ptitles[int(title_pick[i] * len(ptitles))]
            loc = D.LOCATIONS[locs[i] if moved[i] else self.acc_loc[acc]]
            stage = D.STAGES[self.stage[i]]
            owner = self.acc_owner[acc] if self.stage[i] >= 1 else None
            flag = flags[i]
            opted_out = flag < 0.015
            bounced = 0.015 <= flag < 0.023
            if opted_out:
                self.opted_out.append(i + 1)
            elif bounced:
                self.bounced.append(i + 1)
            phone = f"+1 555 {(i * 7919) % 10_000_000:07d}" if flag > 0.6 else None
            rows.append((
                i + 1, email, first, last, title, self.acc_name[acc], phone, acc + 1,
                D.INDUSTRIES[self.acc_industry[acc]], self.acc_employees[acc], loc[0], loc[1], loc[2], sources[i],
                D.STATUS_BY_STAGE[stage], owner, D.PERSONAS[p], stage, opted_out, bounced, "{}" if w.raw else {},
                created[i], created[i],
            ))
            if len(rows) >= CHUNK:
                done += self._write_leads(w, history, cols, rows, kinds)
                rows = []
                self.progress("leads", done, n)
        done += self._write_leads(w, history, cols, rows, kinds)
        self.progress("leads", done, n)
        self.made_activities = history.made

    @staticmethod
    def _write_leads(w: BulkWriter, history: _History, cols: tuple[str, ...], rows: list[tuple[Any, ...]],
                     kinds: dict[str, str]) -> int:
        if not rows:
            return 0
        acts, last, scores = history.for_leads(rows[0][0], rows[-1][0] + 1)
        n = w.insert(lead, cols, [(*row, last.get(row[0]), scores.get(row[0], 0.0)) for row in rows], kinds)
        w.insert(activity, _History.COLUMNS, acts, {"at": "dt"})
        return n

    # -- campaigns and opportunities ---------------------------------------------------------------------

    def campaigns(self, w: BulkWriter) -> None:
        rnd, n = self.rnd, self.n
        w.insert(campaign, ("id", "name", "type", "status", "is_active"),
                 [(i + 1, name, kind, "Completed" if i < 6 else "In Progress", i >= 6)
                  for i, (name, kind) in enumerate(D.CAMPAIGNS)])
        k = max(1, n // 8)
        members = rnd.sample(range(1, n + 1), k) if n else []
        camp = rnd.choices(range(1, len(D.CAMPAIGNS) + 1), k=k)
        status = rnd.choices(D.CAMPAIGN_STATUSES, weights=(50, 20, 15, 15), k=k)
        rows = [(lid, cid, st, st in ("Attended", "Responded"), int(self.now_ts - rnd.uniform(1, 90) * 86400))
                for lid, cid, st in zip(members, camp, status, strict=True)]
        for part in chunks(rows, CHUNK):
            w.insert(campaign_member, ("lead_id", "campaign_id", "status", "responded", "created_at"), part,
                     {"created_at": "dt"})
        self.n_members = len(rows)

    def opportunities(self, w: BulkWriter) -> None:
        rnd = self.rnd
        rows: list[tuple[Any, ...]] = []
        for acc in range(self.n_accounts):
            if rnd.random() >= (0.3 if self.acc_named[acc] else 0.04) or acc >= self.n:
                continue
            stage = rnd.choice(D.OPPORTUNITY_STAGES)
            created = self.now_ts - rnd.uniform(5, 180) * 86400
            closed = stage.startswith("Closed")
            close = created + rnd.uniform(20, 120) * 86400
            amount = round(rnd.lognormvariate(10.3, 0.8), -2)
            rows.append((len(rows) + 1, acc + 1, acc + 1, f"{self.acc_name[acc]} — New Business", stage, amount,
                         closed, stage == "Closed Won", close, created))
        cols = ("id", "account_id", "lead_id", "name", "stage", "amount", "is_closed", "is_won", "close_date",
                "created_at")
        for part in chunks(rows, CHUNK):
            w.insert(opportunity, cols, part, {"close_date": "dt", "created_at": "dt"})
        self.n_opps = len(rows)

    # -- the run -----------------------------------------------------------------------------------------

    def run(self) -> DemoSummary:
        started = time.perf_counter()  # clock-ok: measures the build, not domain time
        with write_tx(self.ws.engine) as conn:
            if conn.execute(select(func.count()).select_from(lead)).scalar_one():
                raise NurtureError(f"{self.ws.describe()}: the demo needs an empty workspace (it has leads)")
            # Marks the workspace as a demo from the first row on, so an interrupted build is rebuilt.
            meta.put(conn, META_KEY, {"generator": GENERATOR_VERSION, "building": True})
            w = BulkWriter(conn)
            self.users(w)
            self.accounts(w)
        # Secondary indexes are built once after the load (a sort) instead of row by row (random
        # B-tree inserts): about twice as fast. Unique indexes stay, so every constraint is enforced.
        deferred = {t: [ix for ix in t.indexes if not ix.unique] for t in (lead, activity)}
        self._drop(deferred)
        with write_tx(self.ws.engine) as conn:  # and the rollup triggers (their probes need those indexes)
            rollups.uninstall(conn)
        with write_tx(self.ws.engine) as conn:
            from ..scoring import rules

            rules.ensure_default_rules(conn)
        for step in (self.leads, self.campaigns, self.opportunities):
            with write_tx(self.ws.engine) as conn:
                step(BulkWriter(conn))
        self._create({activity: deferred[activity]})  # scoring reads activity by (lead_id, at)
        with write_tx(self.ws.engine) as conn:
            BulkWriter(conn).fix_sequences([user, rep_group, account, lead, campaign, opportunity])
            self.progress("grades", 0, 1)
            conn.execute(update(lead).values(**self._grade_values(conn)))
        self._create({lead: deferred[lead]})
        mqls = self._score()
        self.progress("report rollups", 0, 1)
        with write_tx(self.ws.engine) as conn:  # the triggers back, the rollups rebuilt from the log once
            rollups.install(conn)
        summary = DemoSummary(
            leads=self.n, accounts=self.n_accounts, named_accounts=self.n_named, users=self.n_users,
            rep_groups=len(D.REGIONS), campaigns=len(D.CAMPAIGNS), campaign_members=self.n_members,
            opportunities=self.n_opps, activities=self.made_activities, mqls=mqls, seed=self.seed,
            seconds=round(time.perf_counter() - started, 2),  # clock-ok
        )
        with write_tx(self.ws.engine) as conn:
            meta.put(conn, META_KEY, {**summary.params(), "generator": GENERATOR_VERSION})
            if self.ws.is_sqlite:  # planner statistics from a sample of each index: seconds saved at 1M rows
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("ANALYZE")
        if self.ws.is_sqlite:  # fold the load's WAL back into the database file (outside a transaction)
            raw = self.ws.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
            finally:
                raw.close()
        return summary

    def _drop(self, indexes: dict[Any, list[Any]]) -> None:
        with write_tx(self.ws.engine) as conn:
            for table_indexes in indexes.values():
                for ix in table_indexes:
                    ix.drop(conn, checkfirst=True)

    def _create(self, indexes: dict[Any, list[Any]]) -> None:
        for table, table_indexes in indexes.items():
            self.progress(f"{table.name} indexes", 0, len(table_indexes))
            with write_tx(self.ws.engine) as conn:
                for ix in table_indexes:
                    ix.create(conn, checkfirst=True)

    def _grade_values(self, conn: Any) -> dict[str, Any]:
        """Installs the demo fit profile; returns the SET values that grade every lead with the scoring
        package's own criteria SQL (one profile, no `when`), the letter looked up from the rank."""
        from ..scoring import grading

        profiles = [grading.parse_profile(p, "demo profile") for p in DEMO_GRADE_PROFILES]
        grading.save_profiles(conn, profiles)
        rank = grading.rank_expr(profiles[0])
        letters = "".join(g.ljust(2) for g in GRADES)
        return {"grade_rank": rank, "grade": func.rtrim(func.substr(letters, rank * 2 + 1, 2))}

    def _score(self) -> int:
        """Scores are in (see `_History`); refresh account scores and open the MQLs they earn."""
        from ..scoring import accounts, mql
        from .mqls import spread_ages

        self.progress("mqls", 0, 1)
        with write_tx(self.ws.engine) as conn:
            accounts.refresh(conn, None, self.now, self.ws.settings)
            qualified = mql.check_all(conn, self.now, self.ws.settings)
            spread_ages(conn, qualified, self.now, self.seed)
            return len(qualified)


class _History:
    """90 days of engagement, generated lead by lead (so rows arrive in `lead_id` order and two of the
    three activity indexes grow at their ends).

    How many activity rows each lead gets is drawn up front — one multinomial over all leads, weighted
    by persona, stage and a 1 % "hot" minority whose activity is recent and dense — so the total is
    exactly the requested number. A lead then receives email touches and web visits until its quota
    is used up. Its score is computed on the spot with the workspace's own score rules (the scoring
    package's matcher, caps and decay scale), exactly what a rescore of that history would give."""

    COLUMNS = ("lead_id", "kind", "at", "url", "bot", "meta")

    def __init__(self, gen: _Gen, w: BulkWriter, explained: list[tuple[int, str]]) -> None:
        from ..engine.events import ENGAGEMENT_KINDS
        from ..scoring import rules, service

        self.engaged_kinds = ENGAGEMENT_KINDS
        self.gen, self.w = gen, w
        rnd, n = gen.rnd, gen.n
        self.end = gen.now_ts - 60
        self.start = self.end - HISTORY_DAYS * 86400
        self.empty: Any = "{}" if w.raw else {}
        self.as_meta: Callable[[dict[str, Any]], Any] = json.dumps if w.raw else dict
        self.behaviour = [PERSONA_BEHAVIOUR[p] for p in D.PERSONAS]
        self.hot = [rnd.random() < 0.01 for _ in range(n)]
        weights = [self.behaviour[p][0] * STAGE_ACTIVITY[D.STAGES[s]] * (60.0 if h else 1.0)
                   for p, s, h in zip(gen.persona, gen.stage, self.hot, strict=True)]
        target = gen.n_activities
        explained = explained[:target]
        self.explain = dict(explained)  # lead id → the unsubscribe/bounce that explains its flag
        self.quota = [0] * n
        for lid, _ in explained:
            self.quota[lid - 1] += 1
        if n and target > len(explained):
            for i in rnd.choices(range(n), cum_weights=list(itertools.accumulate(weights)),
                                 k=target - len(explained)):
                self.quota[i] += 1
        self.urls = list(itertools.accumulate(D.URL_WEIGHTS))
        self.forms = list(itertools.accumulate(D.FORM_WEIGHTS))
        self.made = 0
        self.rules = rules.load_rules(w.conn)  # inside the load's own transaction
        self.grant = rules.grant
        self._matching: dict[tuple[str, str | None, str], tuple[Any, ...]] = {}
        self.scale = service.scale(w.conn, gen.now, gen.ws.settings)

    def for_leads(self, lo: int, hi: int) -> tuple[list[tuple[Any, ...]], dict[int, float], dict[int, float]]:
        """Activity rows, last engagement (Unix seconds) and stored score for lead ids lo..hi-1."""
        rows: list[tuple[Any, ...]] = []
        last: dict[int, float] = {}
        scores: dict[int, float] = {}
        for lid in range(lo, hi):
            quota = self.quota[lid - 1]
            if not quota:
                continue
            acts = self._lead(lid, quota)
            rows.extend(acts)
            engaged = [a[2] for a in acts if a[1] in self.engaged_kinds]
            if engaged:
                last[lid] = max(engaged)
            score = self._score(lid, acts)
            if score:
                scores[lid] = score
        self.made += len(rows)
        self.gen.progress("activities", self.made, self.gen.n_activities)
        return rows, last, scores

    def _lead(self, lid: int, quota: int) -> list[tuple[Any, ...]]:
        rnd, gen = self.gen.rnd, self.gen
        random_, expo, bisect_ = rnd.random, rnd.expovariate, bisect.bisect
        out: list[tuple[Any, ...]] = []
        end, empty = self.end, self.empty
        # A lead created in the last minutes still gets a window of an hour (its events may not run
        # past "now", and the loop below must always make progress).
        lo = min(max(self.start, gen.created[lid - 1]), end - 3600)
        hot = self.hot[lid - 1]
        _, p_open, p_click = self.behaviour[gen.persona[lid - 1]]
        suppressed = lid in self.explain

        def emit(kind: str, at: float, url: str | None = None, bot: bool = False, meta_: Any = empty) -> bool:
            if at <= end:  # later reactions have not happened yet
                out.append((lid, kind, int(at), url, bot, meta_))
            return len(out) >= quota

        if suppressed and emit(self.explain[lid], lo + random_() * (end - lo)):
            return out
        for _ in range(50 * quota):  # every touch emits at least its first event; this bound is a guard
            r = random_()
            at = end - (end - lo) * (r * r * r if hot else r)
            if random_() < 0.25 or suppressed:  # a web visit: a few page views, sometimes a form
                for _ in range(1 + int(expo(1.2))):
                    if emit("page_view", at, D.URLS[bisect_(self.urls, random_() * self.urls[-1])]):
                        return out
                    at += 20 + expo(1 / 90)
                if random_() < 0.08:
                    form = D.FORMS[bisect_(self.forms, random_() * self.forms[-1])]
                    if emit("form", at, meta_=self.as_meta({"form": form})):
                        return out
                continue
            if emit("sent", at):
                return out
            # a link scanner opens within seconds: recorded, but flagged as a bot
            if random_() < 0.03 and emit("open", at + 2 + random_() * 5, bot=True):
                return out
            if random_() >= p_open:
                continue
            at += 60 + expo(1 / 7200)
            if emit("open", at):
                return out
            if random_() >= p_click:
                continue
            at += 10 + expo(1 / 300)
            url = D.URLS[bisect_(self.urls, random_() * self.urls[-1])]
            if emit("click", at, url) or emit("page_view", at + 2, url):
                return out
        return out

    def _score(self, lid: int, acts: list[tuple[Any, ...]]) -> float:
        """The stored-scale score of one lead's whole history under the active rules (caps by the scoring
        package's own `grant`)."""
        grant, to_stored = self.grant, self.scale.to_stored
        total = 0.0
        counts: dict[tuple[Any, ...], int] = {}
        matching = self._matching
        for _, kind, at_s, url, bot, meta_ in sorted(acts, key=lambda a: a[2]):
            if bot:
                continue
            mkey = meta_ if isinstance(meta_, str) else json.dumps(meta_, sort_keys=True)
            rules = matching.get((kind, url, mkey))
            if rules is None:
                rules = self._rules_for(kind, url, mkey)
            if not rules:
                continue
            at = datetime.fromtimestamp(at_s, UTC)
            for rule in rules:
                points = grant(rule, at, counts, (0, url) if url else None)  # generated activities: no message
                if points:
                    total += to_stored(points, at)
        return total

    def _rules_for(self, kind: str, url: str | None, meta_json: str) -> tuple[Any, ...]:
        """The rules an activity of this kind/url/meta matches (the scoring package decides; memoised,
        since generated history draws these from small pools)."""
        from ..activity import ActivityEvent

        act = ActivityEvent(lead_id=0, kind=kind, url=url, meta=json.loads(meta_json))
        found = tuple(r for r in self.rules.for_kind(kind) if r.matches(act))
        self._matching[(kind, url, meta_json)] = found
        return found


def build_demo(
    ws: Workspace,
    *,
    leads: int = 10_000,
    seed: int = 42,
    activities: int | None = None,
    progress: DemoProgress | None = None,
) -> DemoSummary:
    """Fill an empty workspace with the demo data set (see the module doc)."""
    if leads < 1:
        raise NurtureError("--leads must be at least 1")
    n_acts = default_activities(leads) if activities is None else activities
    if n_acts < 0:
        raise NurtureError("--activities must not be negative")
    return _Gen(ws, leads, seed, n_acts, progress).run()

