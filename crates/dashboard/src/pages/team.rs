//! `GET /teams/{id}?period=YYYY-MM`: who needs support and why, coaching
//! coverage, the attainment heat map (rep × standard × period, quality and
//! quantity apart), new hires on the ramp, open plans and support requests.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Days, NaiveDate};
use serde::Deserialize;
use trellis_domain::{Period, PeriodKind, StandardId, StandardKind, TeamId};
use trellis_projections::growth::derive::{GrowthTimeline, RepProfile};
use trellis_projections::growth::{StandardDoc, StandingKind, kinds};
use trellis_projections::query::{self, standing_as_of};

use super::{PageId, Visit, days_ago, leader_links};
use crate::data;
use crate::error::PageError;
use crate::html::{attainment_class, esc, num, page, pct, standing_badge, table_start};

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    period: Option<String>,
}

fn previous(period: Period) -> Period {
    Period::containing(
        period.kind(),
        period
            .start()
            .checked_sub_days(Days::new(1))
            .unwrap_or(period.start()),
    )
}

/// The latest `n` periods of `kind` that have ended by `cutoff`, oldest first.
/// How many periods of each length a heat table shows.
const HEAT_WEEKS: usize = 8;
const HEAT_MONTHS: usize = 6;
const HEAT_QUARTERS: usize = 4;

fn last_periods(kind: PeriodKind, cutoff: NaiveDate, today: NaiveDate, n: usize) -> Vec<Period> {
    let mut p = Period::containing(kind, cutoff);
    if p.end() >= today {
        p = previous(p);
    }
    let mut out = vec![p];
    while out.len() < n {
        p = previous(p);
        out.push(p);
    }
    out.reverse();
    out
}

pub(crate) async fn handler(
    Visit { state, viewer }: Visit,
    PageId(team_id): PageId<TeamId>,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    viewer.may_see_team(team_id.as_uuid())?;
    let today = state.today();
    let period = match params
        .period
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Period::containing(PeriodKind::Month, today),
        Some(text) => text.parse::<Period>().map_err(|e| {
            PageError::BadRequest(format!(
                "period must be a month (2026-03), a week (2026-W05) or a quarter (2026-Q1): {e}"
            ))
        })?,
    };
    let Some(team) = data::team(&state, team_id).await? else {
        return Err(PageError::NotFound(
            "There is no team with this id (or the read models have not caught up with it yet)."
                .into(),
        ));
    };
    let cutoff = period.end().min(today);
    // The rows this page shows: the period's, and the heat tables' last
    // periods of each length up to the cutoff.
    let needs: Vec<(PeriodKind, NaiveDate)> = [
        (PeriodKind::Week, HEAT_WEEKS),
        (PeriodKind::Month, HEAT_MONTHS),
        (PeriodKind::Quarter, HEAT_QUARTERS),
    ]
    .into_iter()
    .filter_map(|(kind, n)| {
        last_periods(kind, cutoff, today, n)
            .first()
            .map(|p| (kind, p.start()))
    })
    .chain([(period.kind(), period.start())])
    .collect();
    let reps = state
        .models()
        .profiles_and_timelines_from(&team.reps, &needs, today)
        .await?;
    let view = query::team_view(&team, &reps, period, today);
    let members: Vec<&(RepProfile, GrowthTimeline)> = reps
        .iter()
        .filter(|(p, _)| view.reps.contains(&p.rep_id))
        .collect();
    let standard_ids: Vec<String> = members
        .iter()
        .flat_map(|(_, t)| {
            t.weeks
                .iter()
                .rev()
                .take(12)
                .chain(t.months.iter().rev().take(6))
                .flat_map(|r| r.standards.iter().map(|s| s.standard_id.to_string()))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let standards: BTreeMap<StandardId, StandardDoc> =
        data::docs::<StandardDoc>(&state, kinds::STANDARD, &standard_ids)
            .await?
            .into_iter()
            .map(|s| (s.standard_id, s))
            .collect();

    let mut b = String::with_capacity(64 * 1024);
    let _ = write!(
        b,
        "<h1>{}</h1><p class=\"lead\">Led by {} · {} reps in {} · as of {today}</p>",
        esc(team.name.as_ref()),
        leader_links(&viewer, &team.leaders),
        view.headcount,
        period
    );
    let next = period.next();
    let _ = write!(
        b,
        "<nav class=\"noprint\" aria-label=\"Period\"><a href=\"?period={prev}\">← {prev}</a>{}</nav>",
        if next.start() <= today {
            format!(" · <a href=\"?period={next}\">{next} →</a>")
        } else {
            String::new()
        },
        prev = previous(period),
    );

    // Summary cards.
    let c = &view.coaching;
    let _ = write!(
        b,
        "<div class=\"grid\" style=\"margin-top:1rem\">\
         <section class=\"card\" aria-labelledby=\"cov\"><h3 id=\"cov\">Coaching coverage in {period}</h3>\
         <p class=\"stat\">{} <small>{} of {} reps coached</small></p>\
         <div class=\"bar\" role=\"presentation\"><span style=\"width:{:.0}%\"></span></div>\
         <p class=\"muted\">{}, {} per rep, {} minutes.</p></section>",
        pct(c.coverage),
        c.reps_coached,
        view.headcount,
        c.coverage.unwrap_or(0.0) * 100.0,
        trellis_queries::export::plural(u64::from(c.sessions), "session", "sessions"),
        c.sessions_per_rep
            .map_or("–".to_owned(), |v| format!("{v:.1}")),
        c.minutes
    );
    let _ = write!(
        b,
        "<section class=\"card\"><h3>Needs support</h3><p class=\"stat\">{} <small>of {} reps</small></p>\
         <p class=\"muted\">Including {} on an improvement plan.</p></section>",
        view.needs_support.len(),
        view.headcount,
        view.open_plans.len()
    );
    let _ = write!(
        b,
        "<section class=\"card\"><h3>Support requests</h3><p class=\"stat\">{} <small>open</small></p>\
         <p class=\"muted\">{} raised and {} resolved in {period}; median time to resolve {}.</p></section></div>",
        view.support.open,
        view.support.raised_in_period,
        view.support.resolved_in_period,
        view.support
            .median_days_to_resolve
            .map_or("–".to_owned(), |d| format!("{d:.1} days"))
    );

    // Who needs support and why.
    b.push_str("<h2 id=\"support\">Who needs support, and why</h2>");
    if view.needs_support.is_empty() {
        b.push_str("<p>Nobody right now: every rep is on track or thriving.</p>");
    } else {
        b.push_str("<ul class=\"timeline\">");
        for rep in &view.needs_support {
            let _ = write!(
                b,
                "<li class=\"{}\"><a href=\"/reps/{}\"><strong>{}</strong></a> {}<ul class=\"reasons\">",
                if rep.standing.standing == StandingKind::OnImprovementPlan {
                    "plan"
                } else {
                    "support"
                },
                rep.rep_id,
                esc(rep.name.as_ref()),
                standing_badge(rep.standing.standing)
            );
            for reason in &rep.standing.reasons {
                let _ = write!(b, "<li>{}</li>", esc(reason));
            }
            b.push_str("</ul></li>");
        }
        b.push_str("</ul>");
    }

    // Coaching per rep.
    b.push_str(
        "<h2>Coaching, rep by rep</h2><div class=\"scroll\"><table><caption>Longest without coaching first</caption>\
         <thead><tr><th scope=\"col\">Rep</th><th scope=\"col\">Role</th><th scope=\"col\">Standing</th>\
         <th scope=\"col\">Last coached</th><th scope=\"col\" class=\"n\">Sessions in period</th>\
         <th scope=\"col\" class=\"n\">Sessions in all</th></tr></thead><tbody>",
    );
    let mut by_coaching: Vec<&&(RepProfile, GrowthTimeline)> = members.iter().collect();
    by_coaching.sort_by_key(|(p, _)| (p.last_coached_on, p.name.to_string()));
    for (p, t) in by_coaching {
        let in_period = t.row(period).map_or(0, |r| r.coaching_sessions);
        let standing = standing_as_of(p, today);
        let _ = write!(
            b,
            "<tr><th scope=\"row\"><a href=\"/reps/{}\">{}</a></th><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"n\">{in_period}</td><td class=\"n\">{}</td></tr>",
            p.rep_id,
            esc(p.name.as_ref()),
            esc(p.role.as_ref()),
            standing_badge(standing.standing),
            p.last_coached_on.map_or("never".to_owned(), |d| format!(
                "{d} <span class=\"muted\">({})</span>",
                days_ago(d, today)
            )),
            p.coaching_sessions
        );
    }
    b.push_str("</tbody></table></div>");

    // Heat map.
    b.push_str(
        "<h2>Attainment heat map</h2><p class=\"muted\">Each cell is the rep's attainment of the \
         standard in that period (actual ÷ the target in force, ramp-adjusted). Quality comes first.</p>\
         <ul class=\"legend\"><li><span class=\"swatch met\"></span>met (100% or more)</li>\
         <li><span class=\"swatch near\"></span>near (80–99%)</li>\
         <li><span class=\"swatch missed\"></span>missed badly (under 80%)</li>\
         <li><span class=\"swatch none\"></span>not measured or does not apply</li></ul>",
    );
    for (kind, label) in [
        (StandardKind::Quality, "Quality"),
        (StandardKind::Quantity, "Quantity"),
        (StandardKind::Behaviour, "Behaviour"),
    ] {
        let of_kind: Vec<&StandardDoc> = standards.values().filter(|s| s.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = write!(b, "<h3>{label} standards</h3>");
        for standard in of_kind {
            heat_table(&mut b, standard, &members, cutoff, today);
        }
    }

    // Ramp.
    b.push_str("<h2>New hires on the ramp</h2>");
    let mut ramping = 0;
    for (p, t) in &members {
        let mut lines = vec![];
        for rows in [&t.weeks, &t.months] {
            let Some(row) = rows
                .iter()
                .rev()
                .find(|r| r.end < today || r.start <= today)
            else {
                continue;
            };
            // The latest period with a ramp step, if the rep is still on it.
            let latest = rows
                .iter()
                .rev()
                .find(|r| r.end <= today && r.standards.iter().any(|s| s.actual.is_some()))
                .unwrap_or(row);
            // Which period of this length the shown one is for the rep: a
            // ramp that ended before it is not listed (the timeline stops at
            // the rep's last recorded fact, which may be long ago).
            let shown =
                Period::containing(latest.period.kind(), cutoff).ordinal_since(p.start_date);
            for s in latest.standards.iter().filter(|s| s.ramp_percent.is_some()) {
                let version = standards
                    .get(&s.standard_id)
                    .and_then(|d| d.versions.last());
                let steps = version.map_or(0, |v| v.ramp.len());
                if !shown.is_some_and(|shown| version.is_some_and(|v| v.ramps(shown))) {
                    continue;
                }
                lines.push(format!(
                    "<tr><td>{}</td><td>{} {} of {steps}</td><td class=\"n\">{}%</td><td class=\"n\">{}</td>\
                     <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"cell {}\">{}</td></tr>",
                    esc(s.name.as_ref()),
                    match latest.period.kind() {
                        PeriodKind::Week => "week",
                        PeriodKind::Month => "month",
                        PeriodKind::Quarter => "quarter",
                    },
                    latest.period_index,
                    s.ramp_percent.unwrap_or(100),
                    s.target.map_or("–".to_owned(), num),
                    s.full_target.map_or("–".to_owned(), num),
                    s.actual.map_or("–".to_owned(), num),
                    attainment_class(s.attainment),
                    pct(s.attainment)
                ));
            }
        }
        if lines.is_empty() {
            continue;
        }
        ramping += 1;
        let _ = write!(
            b,
            "<h3><a href=\"/reps/{}\">{}</a> <span class=\"muted\">started {}</span></h3>\
             <div class=\"scroll\"><table class=\"heat\"><thead><tr><th scope=\"col\">Standard</th>\
             <th scope=\"col\">Ramp step</th><th scope=\"col\" class=\"n\">Share of target</th>\
             <th scope=\"col\" class=\"n\">Target</th><th scope=\"col\" class=\"n\">Full target</th>\
             <th scope=\"col\" class=\"n\">Actual</th><th scope=\"col\">Attainment</th></tr></thead><tbody>{}</tbody></table></div>",
            p.rep_id,
            esc(p.name.as_ref()),
            p.start_date,
            lines.join("")
        );
    }
    if ramping == 0 {
        b.push_str("<p>No rep is on a ramp schedule in this period.</p>");
    }

    // Plans.
    b.push_str("<h2>Open improvement plans</h2>");
    if view.open_plans.is_empty() {
        b.push_str("<p>None.</p>");
    } else {
        b.push_str(&table_start(&["Rep", "Started", "Review on"]));
        for plan in &view.open_plans {
            let _ = write!(
                b,
                "<tr><td><a href=\"/reps/{}\">{}</a></td><td>{}</td><td>{}{}</td></tr>",
                plan.rep_id,
                esc(plan.name.as_ref()),
                plan.started_on,
                plan.review_on,
                if plan.review_overdue {
                    "<span class=\"tag overdue\">review overdue</span>"
                } else {
                    ""
                }
            );
        }
        b.push_str("</tbody></table></div>");
    }

    // Open support requests with their age.
    b.push_str("<h2>Open support requests</h2>");
    let mut open: Vec<(
        &RepProfile,
        &trellis_projections::growth::derive::SupportRequestView,
    )> = members
        .iter()
        .flat_map(|(p, _)| {
            p.support_requests
                .iter()
                .filter(|r| r.raised_on <= cutoff && r.resolved_on.is_none_or(|on| on > cutoff))
                .map(move |r| (p, r))
        })
        .collect();
    open.sort_by_key(|(_, r)| r.raised_on);
    if open.is_empty() {
        b.push_str("<p>None: every obstacle raised has been removed.</p>");
    } else {
        b.push_str(&table_start(&[
            "Rep",
            "Category",
            "Request",
            "Raised",
            "#Age",
            "Acknowledged",
        ]));
        for (p, r) in open {
            let _ = write!(
                b,
                "<tr><td><a href=\"/reps/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"n\">{} days</td><td>{}</td></tr>",
                p.rep_id,
                esc(p.name.as_ref()),
                category(r.category),
                esc(r.description.as_ref()),
                r.raised_on,
                (cutoff - r.raised_on).num_days(),
                r.acknowledged_on.map_or(
                    "<span class=\"tag overdue\">not yet</span>".to_owned(),
                    |d| d.to_string()
                )
            );
        }
        b.push_str("</tbody></table></div>");
    }

    Ok(Html(page(team.name.as_ref(), Some(viewer.signed()), &b)).into_response())
}

pub(crate) fn category(c: trellis_domain::rep::SupportCategory) -> &'static str {
    use trellis_domain::rep::SupportCategory as C;
    match c {
        C::Leads => "leads",
        C::Tools => "tools",
        C::Training => "training",
        C::Process => "process",
        C::Other => "other",
    }
}

fn heat_table(
    b: &mut String,
    standard: &StandardDoc,
    members: &[&(RepProfile, GrowthTimeline)],
    cutoff: NaiveDate,
    today: NaiveDate,
) {
    let (n, unit) = match standard.period {
        PeriodKind::Week => (HEAT_WEEKS, "weekly"),
        PeriodKind::Month => (HEAT_MONTHS, "monthly"),
        PeriodKind::Quarter => (HEAT_QUARTERS, "quarterly"),
    };
    let periods = last_periods(standard.period, cutoff, today, n);
    let direction = match standard.direction {
        trellis_domain::Direction::AtLeast => "at least",
        trellis_domain::Direction::AtMost => "at most",
    };
    let target = standard
        .version_in_force(cutoff)
        .map_or("retired".to_owned(), |v| {
            format!(
                "{direction} {} {}",
                num(v.target.get()),
                esc(standard.unit.as_ref())
            )
        });
    let mut rows = String::new();
    for (p, t) in members {
        let cells: Vec<Option<&trellis_projections::growth::StandardRow>> = periods
            .iter()
            .map(|period| {
                t.row(*period).and_then(|r| {
                    r.standards
                        .iter()
                        .find(|s| s.standard_id == standard.standard_id && s.applies)
                })
            })
            .collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let _ = write!(
            rows,
            "<tr><th scope=\"row\"><a href=\"/reps/{}\">{}</a></th>",
            p.rep_id,
            esc(p.name.as_ref())
        );
        for cell in cells {
            match cell {
                Some(s) => {
                    let _ = write!(
                        rows,
                        "<td class=\"cell {}\" title=\"actual {} of target {}\">{}</td>",
                        attainment_class(s.attainment),
                        s.actual.map_or("–".to_owned(), num),
                        s.target.map_or("–".to_owned(), num),
                        pct(s.attainment)
                    );
                }
                None => rows.push_str("<td class=\"cell none\">–</td>"),
            }
        }
        rows.push_str("</tr>");
    }
    if rows.is_empty() {
        return;
    }
    let _ = write!(
        b,
        // The title stands above the table's scroll, not in it: a phone
        // opens the table on its latest periods, and a caption scrolled
        // with them was cut to "…ly, at least 85 points".
        "<h4 class=\"heat-title\" id=\"heat-{id}\">{} — {unit}, {target}</h4>\
         <div class=\"scroll latest\" style=\"margin-bottom:1rem\">\
         <table class=\"heat\" aria-labelledby=\"heat-{id}\">\
         <thead><tr><th scope=\"col\">Rep</th>",
        esc(standard.name.as_ref()),
        id = standard.standard_id,
    );
    for period in &periods {
        let _ = write!(b, "<th scope=\"col\" class=\"n\">{period}</th>");
    }
    let _ = write!(b, "</tr></thead><tbody>{rows}</tbody></table></div>");
}
