//! `GET /reps/{id}?as_of=YYYY-MM-DD`: a rep's growth — levels per
//! competency over time, attainment per standard against its target
//! (quality and quantity apart, the quality gate marked), coaching and
//! feedback on one timeline, standing history with its reasons, open action
//! items and plans. With `as_of`, everything as it stood at the end of that
//! day (business time, UTC), replayed from the log by the read side's time
//! travel: the same answer `GET /v1/reps/{id}/as-of` gives for that instant.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Datelike, Days, Months, NaiveDate};
use serde::Deserialize;
use trellis_domain::rep::{Owner, RepEvent};
use trellis_domain::{Event, PeriodKind, RepId, StandardKind};
use trellis_http::auth::Role;
use trellis_projections::growth::derive::{GrowthTimeline, PeriodRow, Phase, SupportRequestView};
use trellis_projections::growth::{StandardDoc, kinds};
use trellis_projections::query::{self, standing_as_of};
use trellis_queries::asof::{History, TimeBasis, readable_history};
use trellis_queries::export::plural;
use trellis_queries::params::end_of_day;

use super::{RepVisit, actions, days_ago, lenient_date};
use crate::data::{self, Entry};
use crate::error::PageError;
use crate::html::{
    NOTHING_CHANGED, attainment_class, esc, notice_ok, num, outcome, page, pct,
    stacked_table_start, standing_badge, table_start,
};
use crate::svg::{Chart, Series};

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    as_of: Option<String>,
    /// What a form just recorded (`feedback`), to say so.
    recorded: Option<String>,
    /// Set when a form found nothing to record (it was so already).
    unchanged: Option<String>,
}

/// Short label of a period's start for chart axes: `03 Mar`, or `Mar 26` for months.
pub(crate) fn axis_label(row: &PeriodRow) -> String {
    match row.period.kind() {
        PeriodKind::Week => row.start.format("%d %b").to_string(),
        PeriodKind::Month => row.start.format("%b %y").to_string(),
        PeriodKind::Quarter => row.period.to_string(),
    }
}

/// The rows worth charting: from the first with a level or a measurement, up to `day`.
fn charted(rows: &[PeriodRow], day: NaiveDate) -> &[PeriodRow] {
    let end = rows
        .iter()
        .rposition(|r| r.start <= day)
        .map_or(0, |i| i + 1);
    let rows = &rows[..end];
    let start = rows
        .iter()
        .position(|r| !r.levels.is_empty() || r.standards.iter().any(|s| s.actual.is_some()))
        .unwrap_or(rows.len());
    &rows[start..]
}

/// How long the rep has been with the company on `day`, in whole months
/// completed: 7 days in is not a month, and 29 December to 7 December
/// eleven months on is not twelve. A start still ahead says so.
fn tenure(start: NaiveDate, day: NaiveDate) -> String {
    if start > day {
        return format!("starts on {start}");
    }
    let mut months = (day.year() - start.year()) * 12 + day.month() as i32 - start.month() as i32;
    if day.day() < start.day() {
        months -= 1;
    }
    match months.max(0) {
        0 => format!("started {start} (less than a month)"),
        1 => format!("started {start} (1 month)"),
        n => format!("started {start} ({n} months)"),
    }
}

pub(crate) async fn handler(
    RepVisit {
        state,
        viewer,
        profile: stored,
    }: RepVisit,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let rep_id = stored.rep_id;
    let today = state.today();
    // A date the page cannot show is said beside the as-of field, on the
    // page as it stands today: the reader stays with the rep.
    let (mut as_of, mut as_of_error) = lenient_date(params.as_of.as_deref(), "as_of");
    as_of_error = as_of_error.map(|why| format!("{why} Showing today."));
    if let Some(d) = as_of
        && d > today
    {
        as_of = None;
        as_of_error = Some(format!(
            "{d} is in the future: pick a date on or before today ({today}); showing today."
        ));
    }
    // The rep's history, replayed to any instant by the read side (the
    // viewer's access checked there too).
    let (history, _) = readable_history(state.reads(), viewer.claims(), rep_id).await?;
    let snapshot = as_of.and_then(|d| history.at(end_of_day(d), TimeBasis::Business));
    if let Some(d) = as_of
        && snapshot.is_none()
    {
        as_of = None;
        as_of_error = Some(format!(
            "{} had not joined by {d}: pick a date on or after {}; showing today.",
            stored.name, stored.start_date
        ));
    }
    let day = as_of.unwrap_or(today);
    let (profile, feedback, timeline) = match snapshot {
        Some(snapshot) => (snapshot.profile, snapshot.feedback, snapshot.timeline),
        None => {
            // Both at once: two round trips in the time of one.
            let (timeline, feedback) = tokio::join!(
                data::doc::<GrowthTimeline>(&state, kinds::GROWTH_TIMELINE, rep_id),
                state.models().stored_feedback(rep_id)
            );
            let timeline = timeline?.ok_or_else(|| {
                PageError::Internal(format!("rep {rep_id} has a profile but no timeline"))
            })?;
            (stored, feedback?, timeline)
        }
    };
    let standards = data::standards_of(&state, &timeline).await?;
    let mut view = query::rep_profile(profile, feedback, day);
    if viewer.is_rep() {
        view = view.for_rep();
    }
    let profile = &view.profile;

    let mut competency_ids: BTreeSet<String> =
        profile.levels.keys().map(ToString::to_string).collect();
    for row in timeline.weeks.iter() {
        competency_ids.extend(row.levels.keys().map(ToString::to_string));
        competency_ids.extend(row.feedback.keys().map(ToString::to_string));
        competency_ids.extend(row.coaching_focus.keys().map(ToString::to_string));
    }
    let names = data::competency_names(&state, competency_ids).await?;
    // As of a day, only what had happened by its end: an acknowledgement or
    // a correction made later is not on that day's page.
    let until = end_of_day(day);
    let decoded = history
        .stream()
        .events()
        .filter(|e| as_of.is_none() || e.occurred_at <= until)
        .filter_map(|e| match &e.event {
            Event::Rep(event) => Some(event),
            _ => None,
        });
    let entries: Vec<Entry> = data::timeline_entries(decoded, &names, viewer.sees_private())
        .into_iter()
        .filter(|e| e.on <= day)
        .collect();
    let leaders = data::leader_names(&state).await?;
    let team = data::team(&state, profile.team_id).await?;

    // May the viewer record for this rep as their leader (today's page only)?
    // Nothing more is recorded about an erased rep, nor about one who has
    // not started yet (every record's date would be before they joined):
    // no form is offered.
    let leads = state.writes().is_some()
        && viewer.writes_for_leaders()
        && as_of.is_none()
        && profile.erased_on.is_none()
        && profile.start_date <= today;
    let mut b = String::with_capacity(96 * 1024);
    let _ = write!(
        b,
        "<h1>{}</h1><p class=\"lead\">{} on {} · {} · {}</p>",
        esc(profile.name.as_ref()),
        esc(profile.role.as_ref()),
        match (&team, viewer.is_rep()) {
            (Some(t), false) => format!(
                "<a href=\"/teams/{}\">{}</a>",
                t.team_id,
                esc(t.name.as_ref())
            ),
            (Some(t), true) => esc(t.name.as_ref()),
            (None, _) => "a team".to_owned(),
        },
        tenure(profile.start_date, day),
        match profile.departed_on {
            Some(d) => format!("departed on {d}"),
            None => "active".to_owned(),
        }
    );
    // What a form just recorded is said where the form's redirect lands
    // (the section it changed), or at the top when it names none, so that
    // it is on screen beside what changed.
    // The rep's own to-do list is shown only on their own page of today;
    // elsewhere what it would have said goes at the top.
    let own = viewer.claims().subject_id() == Some(rep_id.as_uuid());
    let to_do_shown = own && as_of.is_none() && state.writes().is_some();
    let placed = |section: Option<&'static str>| match section {
        Some("todo") if !to_do_shown => None,
        other => other,
    };
    let mut notices: Vec<(Option<&'static str>, String)> = Vec::new();
    if let Some(what) = params.recorded.as_deref()
        && let Some(said) = recorded_notice(what)
    {
        notices.push((placed(recorded_section(what)), notice_ok(said)));
    }
    // A form that found nothing to record names the section it leads to.
    if let Some(section) = params.unchanged.as_deref() {
        let section = ["plans", "support", "timeline", "todo", "reviews"]
            .into_iter()
            .find(|known| *known == section);
        notices.push((placed(section), NOTHING_CHANGED.to_owned()));
    }
    let said_in = |section: Option<&str>| -> String {
        notices
            .iter()
            .filter(|(at, _)| *at == section)
            .map(|(_, said)| said.as_str())
            .collect()
    };
    b.push_str(&said_in(None));
    if profile.start_date > today && as_of.is_none() {
        let _ = write!(
            b,
            "<p class=\"notice\" role=\"status\">{} starts on {}: coaching, feedback, \
             assessments and measurements can be recorded from that day.</p>",
            esc(profile.name.as_ref()),
            profile.start_date
        );
    }
    if let Some(on) = profile.erased_on {
        let _ = write!(
            b,
            "<p class=\"notice\" role=\"status\">This person's personal data was erased on \
             {on}: their name and what was written about them read as erased, their figures \
             stay, and nothing more can be recorded about them.</p>"
        );
    }
    if let Some(d) = as_of {
        let _ = write!(
            b,
            "<p class=\"notice\" role=\"status\">Showing {} <strong>as of {d}</strong>: as it \
             happened up to the end of that day (UTC), replayed from the log; a correction \
             counts from the day it was recorded. \
             <a href=\"/reps/{rep_id}\">Back to today</a></p>",
            esc(profile.name.as_ref())
        );
    }
    let _ = write!(
        b,
        "<form class=\"asof noprint\" method=\"get\" action=\"/reps/{rep_id}\">\
         <label for=\"as_of\">Show as of<input type=\"date\" id=\"as_of\" name=\"as_of\" \
         min=\"{}\" max=\"{today}\" value=\"{day}\"{}></label>{}<button type=\"submit\">Show</button>\
         <a class=\"button\" href=\"/reps/{rep_id}/review?from={}&amp;to={day}\">Review packet</a>\
         <a class=\"button\" href=\"/reps/{rep_id}/audit\">Audit trail</a>{}{}</form>",
        profile.start_date.min(today),
        if as_of_error.is_some() {
            " aria-invalid=\"true\" aria-describedby=\"as_of-error\" autofocus"
        } else {
            ""
        },
        as_of_error.as_deref().map_or(String::new(), |why| format!(
            "<p class=\"field-error\" id=\"as_of-error\">{}</p>",
            esc(why)
        )),
        day.checked_sub_days(Days::new(90))
            .unwrap_or(day)
            .max(profile.start_date)
            .min(day),
        // Everything Trellis holds about the rep: for an admin, and for the rep.
        match viewer.claims().role {
            Role::Admin => format!(
                "<a class=\"button\" href=\"/people/{rep_id}/export\">Everything held about them</a>"
            ),
            Role::Rep if viewer.claims().subject_id() == Some(rep_id.as_uuid()) => format!(
                "<a class=\"button\" href=\"/people/{rep_id}/export\">Download everything \
                 Trellis holds about me</a>"
            ),
            _ => String::new(),
        },
        if leads {
            format!(
                "<a class=\"button\" href=\"/reps/{rep_id}/coaching\">Log coaching</a>\
                 <a class=\"button\" href=\"/reps/{rep_id}/assessment\">Assess a skill</a>\
                 <a class=\"button\" href=\"/reps/{rep_id}/feedback\">Give feedback</a>\
                 <a class=\"button\" href=\"/reps/{rep_id}/measurements/new\">Record a measurement</a>{}",
                if profile.open_plan.is_none() {
                    format!(
                        "<a class=\"button\" href=\"/reps/{rep_id}/improvement-plans/new\">Start an improvement plan</a>"
                    )
                } else {
                    String::new()
                }
            )
        } else {
            String::new()
        },
    );
    b.push_str(&reviews_held(&history, rep_id, day));
    b.push_str(&said_in(Some("reviews")));

    // What is the rep's to do, on their own page.
    if to_do_shown {
        let decoded: Vec<&RepEvent> = history
            .stream()
            .events()
            .filter_map(|e| match &e.event {
                Event::Rep(event) => Some(event),
                _ => None,
            })
            .collect();
        let hidden = data::hidden_from_rep(decoded.iter().copied());
        let standards = data::standards_to_acknowledge(&state, &decoded, &view.profile).await?;
        to_do(
            &mut b,
            &decoded,
            &hidden,
            &view,
            &names,
            &standards,
            viewer.signed().csrf,
        );
        let heading = TODO_HEADING;
        if let Some(at) = b.rfind(heading) {
            b.insert_str(at + heading.len(), &said_in(Some("todo")));
        }
    }

    // Standing and phase.
    let _ = write!(
        b,
        "<div class=\"grid\"><section class=\"card\" aria-labelledby=\"standing\"><h3 id=\"standing\">Standing</h3>\
         <p>{}</p><ul class=\"reasons\">",
        standing_badge(view.standing.standing)
    );
    for reason in &view.standing.reasons {
        let _ = write!(b, "<li>{}</li>", esc(reason));
    }
    let phase = &profile.phase;
    let _ = write!(
        b,
        "</ul></section><section class=\"card\" aria-labelledby=\"phase\"><h3 id=\"phase\">Focus: {}</h3>\
         <p>{}</p><ul class=\"reasons\">",
        match phase.phase {
            Phase::Quality => "quality first",
            Phase::Quantity => "quantity (quality gate passed)",
        },
        esc(&phase.reason)
    );
    for g in &phase.standards {
        let _ = write!(
            b,
            "<li>{}: {} of {} periods met in a row{}</li>",
            esc(g.name.as_ref()),
            g.consecutive_met.min(phase.gate_periods),
            phase.gate_periods,
            g.gate_met_in
                .map(|p| format!(" (gate met in {p})"))
                .unwrap_or_default()
        );
    }
    let _ = write!(
        b,
        "</ul></section><section class=\"card\"><h3>Coaching</h3><p class=\"stat\">{} <small>{} in all</small></p>\
         <p class=\"muted\">{}.</p></section></div>",
        profile.coaching_sessions,
        if profile.coaching_sessions == 1 {
            "session"
        } else {
            "sessions"
        },
        profile
            .last_coached_on
            .map_or("Not coached yet".to_owned(), |d| format!(
                "Last coached on {d} ({})",
                days_ago(d, day)
            ))
    );

    // Growth charts.
    b.push_str("<h2>Growth</h2>");
    let weeks = charted(&timeline.weeks, day);
    if weeks.is_empty() {
        b.push_str("<p>No assessment or measurement yet.</p>");
    } else {
        levels_chart(&mut b, weeks, &names);
    }
    let gate_on = phase.quality_gate_passed_on;
    for (kind, label) in [
        (StandardKind::Quality, "Quality"),
        (StandardKind::Quantity, "Quantity"),
        (StandardKind::Behaviour, "Behaviour"),
    ] {
        for (bucket, rows) in [
            ("weekly", charted(&timeline.weeks, day)),
            ("monthly", charted(&timeline.months, day)),
        ] {
            attainment_chart(&mut b, kind, label, bucket, rows, gate_on, &standards);
        }
    }

    // Open work.
    b.push_str("<h2 id=\"items\">Open action items</h2>");
    if view.open_action_items.is_empty() {
        b.push_str("<p>None open.</p>");
    } else {
        b.push_str("<ul class=\"timeline\">");
        for item in &view.open_action_items {
            let _ = write!(
                b,
                "<li class=\"coaching\"><span class=\"when\">due {}</span>{}{}{}<p>Owner: {}</p>{}</li>",
                item.item.due_on,
                esc(item.item.description.as_ref()),
                if item.overdue {
                    format!(
                        "<span class=\"tag overdue\">overdue {} days</span>",
                        (day - item.item.due_on).num_days()
                    )
                } else {
                    String::new()
                },
                if item.item.visibility == trellis_domain::rep::Visibility::Private {
                    "<span class=\"tag private\">private</span>"
                } else {
                    ""
                },
                match item.item.owner {
                    Owner::Rep => "the rep".to_owned(),
                    Owner::Leader(id) => leaders
                        .get(&id.to_string())
                        .map_or("their leader".to_owned(), |n| esc(n)),
                },
                if leads {
                    // A leader's own follow-up is theirs to mark done; the
                    // rep marks theirs from their page.
                    let done = match item.item.owner {
                        Owner::Leader(_) => format!(
                            "{} ",
                            super::actions::button(
                                &format!(
                                    "/reps/{rep_id}/action-items/{}/completion",
                                    item.item.action_item_id
                                ),
                                ("Mark done", item.item.description.as_ref()),
                                viewer.signed().csrf,
                                &[]
                            )
                        ),
                        Owner::Rep => String::new(),
                    };
                    format!(
                        "<p class=\"actions\">{done}<a href=\"/reps/{rep_id}/action-items/{}/drop\">Drop this item{}</a></p>",
                        item.item.action_item_id,
                        super::actions::unseen(&format!(": {}", item.item.description.as_ref()))
                    )
                } else {
                    String::new()
                }
            );
        }
        b.push_str("</ul>");
    }

    b.push_str("<h2 id=\"plans\">Improvement plans</h2>");
    // A plan closed as extended goes on in a new plan: the leader who just
    // closed it is offered the form to start it.
    let extended = params.recorded.as_deref() == Some("closed")
        && leads
        && profile.open_plan.is_none()
        && profile
            .plans
            .iter()
            .filter(|p| p.closed_on.is_some())
            .max_by_key(|p| (p.closed_on, p.started_on))
            .is_some_and(|p| p.outcome == Some(trellis_domain::rep::PlanOutcome::Extended));
    if extended {
        b.push_str(&notice_ok(&format!(
            "Improvement plan closed as extended. <a href=\"/reps/{rep_id}/improvement-plans/new\">\
             Start the new plan</a> with its targets and review date."
        )));
    } else {
        b.push_str(&said_in(Some("plans")));
    }
    if profile.plans.is_empty() {
        b.push_str("<p>None.</p>");
    } else {
        b.push_str(&stacked_table_start(&[
            "Started",
            "Review on",
            "Targets",
            "Checkpoints",
            "Outcome",
        ]));
        for plan in &profile.plans {
            let targets: Vec<String> = plan
                .targets
                .iter()
                .map(|t| esc(t.description.as_ref()))
                .collect();
            let _ = write!(
                b,
                "<tr><td data-label=\"Started\">{}</td><td data-label=\"Review on\">{}</td>\
                 <td data-label=\"Targets\">{}</td><td class=\"n\" data-label=\"Checkpoints\">{}</td>\
                 <td data-label=\"Outcome\">{}</td></tr>",
                plan.started_on,
                plan.review_on,
                targets.join("<br>"),
                plan.checkpoints.len(),
                match (plan.outcome, plan.closed_on) {
                    (Some(o), Some(on)) => format!("{} on {on}", outcome(o)),
                    _ if leads => format!(
                        "<span class=\"badge plan\">open</span> \
                         <a href=\"/reps/{rep_id}/improvement-plans/{id}/checkpoints\">Record a checkpoint</a> · \
                         <a href=\"/reps/{rep_id}/improvement-plans/{id}/closure\">Close</a>",
                        id = plan.plan_id
                    ),
                    _ => "<span class=\"badge plan\">open</span>".to_owned(),
                }
            );
        }
        b.push_str("</tbody></table></div>");
    }

    b.push_str("<h2 id=\"support\">Support requests</h2>");
    b.push_str(&said_in(Some("support")));
    if profile.support_requests.is_empty() {
        b.push_str("<p>None raised.</p>");
    } else {
        b.push_str(&stacked_table_start(&[
            "Raised",
            "Category",
            "Request",
            "Where it stands",
        ]));
        for r in profile.support_requests.iter().rev() {
            let _ = write!(
                b,
                "<tr><td data-label=\"Raised\">{}</td><td data-label=\"Category\">{}</td>\
                 <td data-label=\"Request\">{}</td><td data-label=\"Where it stands\">{}</td></tr>",
                r.raised_on,
                super::team::category(r.category),
                esc(r.description.as_ref()),
                match (r.resolved_on, r.days_to_resolve) {
                    (Some(on), Some(days)) => format!("Resolved on {on} ({})", after_days(days)),
                    _ => format!(
                        "{}{}",
                        support_waiting(r, day),
                        if leads {
                            support_links(rep_id, r)
                        } else {
                            String::new()
                        }
                    ),
                }
            );
        }
        b.push_str("</tbody></table></div>");
    }

    // Levels now.
    b.push_str("<h2>Levels</h2>");
    let mut levels: Vec<(String, u8, NaiveDate)> = profile
        .levels
        .iter()
        .map(|(id, l)| {
            (
                names
                    .get(&id.to_string())
                    .cloned()
                    .unwrap_or_else(|| id.to_string()),
                l.level,
                l.assessed_on,
            )
        })
        .collect();
    levels.sort();
    if levels.is_empty() {
        b.push_str("<p>No skill assessed yet.</p>");
    } else {
        b.push_str(&table_start(&["Competency", "#Level (1–5)", "Assessed on"]));
        for (name, level, on) in levels {
            let _ = write!(
                b,
                "<tr><th scope=\"row\">{}</th><td class=\"n\">{level}</td><td>{on}</td></tr>",
                esc(&name)
            );
        }
        b.push_str("</tbody></table></div>");
    }

    // Standing history.
    standing_history(&mut b, &history, profile.start_date, day);

    // Timeline.
    b.push_str("<h2 id=\"timeline\">Coaching and feedback</h2>");
    b.push_str(&said_in(Some("timeline")));
    if entries.is_empty() {
        b.push_str("<p>Nothing recorded yet.</p>");
    } else {
        const SHOWN: usize = 30;
        b.push_str("<ol class=\"timeline\">");
        for entry in entries.iter().take(SHOWN) {
            entry_html(&mut b, entry, &leaders, leads.then_some(rep_id));
        }
        b.push_str("</ol>");
        if entries.len() > SHOWN {
            let _ = write!(
                b,
                "<details><summary>Earlier ({} more)</summary><ol class=\"timeline\">",
                entries.len() - SHOWN
            );
            for entry in entries.iter().skip(SHOWN) {
                entry_html(&mut b, entry, &leaders, leads.then_some(rep_id));
            }
            b.push_str("</ol></details>");
        }
    }

    Ok(Html(page(profile.name.as_ref(), Some(viewer.signed()), &b)).into_response())
}

/// The reviews held by `day`, newest first, each linking to the packet of
/// its period: a review recorded on a date among months of history would
/// otherwise show only far down the timeline.
fn reviews_held(history: &History, rep_id: RepId, day: NaiveDate) -> String {
    let mut held: Vec<(NaiveDate, NaiveDate, NaiveDate)> = history
        .stream()
        .events()
        .filter_map(|e| match &e.event {
            Event::Rep(RepEvent::ReviewHeld(r)) if r.on <= day => {
                Some((r.on, r.period_from, r.period_to))
            }
            _ => None,
        })
        .collect();
    if held.is_empty() {
        return String::new();
    }
    held.sort_by(|a, b| b.cmp(a));
    let links: Vec<String> = held
        .iter()
        .map(|(on, from, to)| {
            format!(
                "<a href=\"/reps/{rep_id}/review?from={from}&amp;to={to}\">{on}, of {from} to {to}</a>"
            )
        })
        .collect();
    format!(
        "<p id=\"reviews\"><strong>Reviews held:</strong> {}</p>",
        links.join(" · ")
    )
}

/// The heading of the rep's own to-do list.
const TODO_HEADING: &str = "<h2 id=\"todo-h\">To do</h2>";

/// The section of the page a form that recorded `what` sends the browser
/// to (its redirect's `#…`), where the notice goes; `None`: the top.
fn recorded_section(what: &str) -> Option<&'static str> {
    match what {
        "feedback" | "coaching" | "assessment" | "corrected" => Some("timeline"),
        "plan" | "checkpoint" | "closed" => Some("plans"),
        "support" | "support_acknowledged" | "resolved" => Some("support"),
        "acknowledged" | "completed" | "dropped" => Some("todo"),
        "review" => Some("reviews"),
        _ => None,
    }
}

/// The words a page says after a form recorded `what` (`?recorded=…`).
fn recorded_notice(what: &str) -> Option<&'static str> {
    Some(match what {
        "acknowledged" => "Acknowledged.",
        "completed" => "Marked done.",
        "dropped" => "Action item dropped.",
        "feedback" => "Feedback recorded.",
        "coaching" => "Coaching session recorded.",
        "assessment" => "Assessment recorded.",
        "support" => "Support request sent to your leader.",
        "support_acknowledged" => "Support request acknowledged.",
        "resolved" => "Support request resolved.",
        "measurement" => "Measurement recorded.",
        "plan" => "Improvement plan started.",
        "checkpoint" => "Checkpoint recorded.",
        "closed" => "Improvement plan closed.",
        "corrected" => "Correction recorded.",
        "review" => "Review recorded.",
        _ => return None,
    })
}

/// "after 3 days", "the same day".
fn after_days(days: i64) -> String {
    match u64::try_from(days) {
        Ok(0) | Err(_) => "the same day".to_owned(),
        Ok(n) => format!("after {}", plural(n, "day", "days")),
    }
}

/// Where an open support request stands on `today`: acknowledged (and
/// when), or waiting for a leader to see it, marked for attention.
fn support_waiting(r: &SupportRequestView, today: NaiveDate) -> String {
    let open = match u64::try_from((today - r.raised_on).num_days()) {
        Ok(0) | Err(_) => "raised today".to_owned(),
        Ok(n) => format!("open for {}", plural(n, "day", "days")),
    };
    match r.acknowledged_on {
        Some(on) => format!("Acknowledged on {on}; {open}"),
        None => format!("<span class=\"tag overdue\">not acknowledged yet</span> {open}"),
    }
}

/// A leader's links to answer an open support request.
fn support_links(rep_id: RepId, r: &SupportRequestView) -> String {
    let id = r.request_id;
    let acknowledge = if r.acknowledged_on.is_none() {
        format!(
            "<a href=\"/reps/{rep_id}/support-requests/{id}/acknowledgement\">Acknowledge</a> · "
        )
    } else {
        String::new()
    };
    format!(
        "<br>{acknowledge}<a href=\"/reps/{rep_id}/support-requests/{id}/resolution\">Resolve</a>"
    )
}

/// `edit`: the rep whose records the viewer may retract or correct.
fn entry_html(
    b: &mut String,
    entry: &Entry,
    leaders: &BTreeMap<String, String>,
    edit: Option<RepId>,
) {
    let _ = write!(
        b,
        "<li class=\"{}\"><span class=\"when\">{}</span><strong>{}</strong>{}",
        entry.class,
        entry.on,
        esc(&entry.title),
        if entry.private {
            "<span class=\"tag private\">private</span>"
        } else {
            ""
        }
    );
    if let Some(by) = entry.by.and_then(|id| leaders.get(&id.to_string())) {
        let _ = write!(b, " <span class=\"muted\">by {}</span>", esc(by));
    }
    if let Some(text) = &entry.text {
        let _ = write!(b, "<p>{}</p>", esc(text));
    }
    for extra in &entry.extra {
        let _ = write!(b, "<p class=\"muted\">{}</p>", esc(extra));
    }
    if let Some(c) = &entry.corrected {
        let _ = write!(
            b,
            "<p><span class=\"tag overdue\">correction</span> {}</p>",
            esc(c)
        );
    }
    if let (Some(rep_id), Some((fact, how)), None) = (edit, &entry.fact, &entry.corrected) {
        let about = actions::unseen(&format!("of {}, {}", entry.title, entry.on));
        let _ = write!(
            b,
            "<p class=\"noprint actions\"><a href=\"/reps/{rep_id}/corrections/new?fact={fact}&amp;as=retract\">Retract{about}</a>{}</p>",
            if *how == "level" {
                format!(
                    " · <a href=\"/reps/{rep_id}/corrections/new?fact={fact}&amp;as=level\">Correct the level{about}</a>"
                )
            } else {
                String::new()
            }
        );
    }
    b.push_str("</li>");
}

/// The rep's own to-do list: feedback and standards to acknowledge and the
/// open action items they own, each with its one-click record (or a link to
/// drop it), and a way to ask for support.
fn to_do(
    b: &mut String,
    decoded: &[&RepEvent],
    hidden: &BTreeSet<String>,
    view: &query::RepProfileView,
    names: &BTreeMap<String, String>,
    standards: &[StandardDoc],
    csrf: &str,
) {
    let rep_id = view.profile.rep_id;
    let acknowledged: BTreeSet<String> = decoded
        .iter()
        .filter_map(|e| match e {
            RepEvent::FeedbackAcknowledged(a) => Some(a.feedback_id.to_string()),
            _ => None,
        })
        .collect();
    let mut lines = Vec::new();
    for event in decoded {
        if let RepEvent::FeedbackGiven(f) = event {
            let id = f.feedback_id.to_string();
            if hidden.contains(&id) || acknowledged.contains(&id) {
                continue;
            }
            lines.push(format!(
                "<li>Feedback on {} ({}): {} {}</li>",
                esc(names
                    .get(&f.competency_id.to_string())
                    .map_or("a competency", String::as_str)),
                f.given_on,
                esc(f.note.as_ref()),
                actions::button(
                    &format!("/reps/{rep_id}/feedback/{id}/acknowledgement"),
                    ("Acknowledge", &format!("the feedback of {}", f.given_on)),
                    csrf,
                    &[]
                )
            ));
        }
    }
    for standard in standards {
        let id = standard.standard_id.to_string();
        lines.push(format!(
            "<li>The standard <strong>{}</strong>{}: read it and acknowledge it {}</li>",
            esc(standard.name.as_ref()),
            standard
                .versions
                .last()
                .map(|v| format!(
                    " ({} {}, from {})",
                    v.target,
                    esc(standard.unit.as_ref()),
                    v.effective_from
                ))
                .unwrap_or_default(),
            actions::button(
                &format!("/reps/{rep_id}/expectations-acknowledgements"),
                (
                    "Acknowledge",
                    &format!("the standard {}", standard.name.as_ref())
                ),
                csrf,
                &[("standard_id", &id)]
            )
        ));
    }
    for item in view
        .open_action_items
        .iter()
        .filter(|i| i.item.owner == Owner::Rep)
    {
        lines.push(format!(
            "<li>{}{} (by {}) {} {}</li>",
            esc(item.item.description.as_ref()),
            if item.overdue {
                " <span class=\"tag overdue\">overdue</span>"
            } else {
                ""
            },
            item.item.due_on,
            actions::button(
                &format!(
                    "/reps/{rep_id}/action-items/{}/completion",
                    item.item.action_item_id
                ),
                ("Mark done", item.item.description.as_ref()),
                csrf,
                &[]
            ),
            format_args!(
                "<a href=\"/reps/{rep_id}/action-items/{}/drop\">Drop{}</a>",
                item.item.action_item_id,
                actions::unseen(item.item.description.as_ref())
            )
        ));
    }
    b.push_str("<section class=\"card\" id=\"todo\" aria-labelledby=\"todo-h\">");
    b.push_str(TODO_HEADING);
    if lines.is_empty() {
        b.push_str("<p>Nothing waiting for you.</p>");
    } else {
        let _ = write!(b, "<ul class=\"todo\">{}</ul>", lines.concat());
    }
    let _ = write!(
        b,
        "<p>Something in your way, or something you need? \
         <a class=\"button\" href=\"/reps/{rep_id}/support-requests/new\">Ask for support</a></p></section>"
    );
}

/// One line per `(name, id)` in `ids`, its point in each row given by
/// `point` (none where the row has no value).
fn series_of<T>(
    ids: &[(String, T)],
    rows: &[PeriodRow],
    step: bool,
    mut point: impl FnMut(&PeriodRow, &T) -> Option<f64>,
) -> Vec<Series> {
    ids.iter()
        .enumerate()
        .map(|(i, (name, id))| Series {
            label: name.clone(),
            points: rows.iter().map(|r| point(r, id)).collect(),
            style: i,
            step,
        })
        .collect()
}

fn levels_chart(b: &mut String, rows: &[PeriodRow], names: &BTreeMap<String, String>) {
    let ids: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.levels.keys().map(ToString::to_string))
        .collect();
    if ids.is_empty() {
        return;
    }
    let mut ids: Vec<(String, String)> = ids
        .into_iter()
        .map(|id| (names.get(&id).cloned().unwrap_or_else(|| id.clone()), id))
        .collect();
    ids.sort();
    let series = series_of(&ids, rows, true, |r, id| {
        r.levels
            .iter()
            .find(|(c, _)| c.to_string() == *id)
            .map(|(_, l)| f64::from(*l))
    });
    let last = rows.last().map(|r| r.end).unwrap_or_default();
    let chart = Chart {
        title: "Level per competency, week by week".into(),
        description: format!(
            "Step lines of each competency's assessed level (1 to 5) from {} to {last}.",
            rows[0].start
        ),
        x_labels: rows.iter().map(axis_label).collect(),
        y_min: 0.8,
        y_max: 5.2,
        y_ticks: (1..=5).map(|l| (f64::from(l), l.to_string())).collect(),
        reference: None,
        markers: vec![],
        series,
    };
    b.push_str(&chart.render("levels"));
}

fn attainment_chart(
    b: &mut String,
    kind: StandardKind,
    label: &str,
    bucket: &str,
    rows: &[PeriodRow],
    gate_on: Option<NaiveDate>,
    standards: &BTreeMap<trellis_domain::StandardId, StandardDoc>,
) {
    let mut ids: Vec<(String, trellis_domain::StandardId)> = rows
        .iter()
        .flat_map(|r| r.standards.iter())
        .filter(|s| s.kind == kind && s.applies)
        .map(|s| (s.name.to_string(), s.standard_id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ids.sort();
    if ids.is_empty() {
        return;
    }
    // Keep only the span where these standards applied.
    let first = rows.iter().position(|r| {
        r.standards
            .iter()
            .any(|s| s.kind == kind && s.attainment.is_some())
    });
    let Some(first) = first else { return };
    let rows = &rows[first..];
    let mut max: f64 = 1.5;
    let series = series_of(&ids, rows, false, |r, id| {
        let a = r
            .standards
            .iter()
            .find(|s| s.standard_id == *id && s.applies)
            .and_then(|s| s.attainment);
        if let Some(a) = a {
            max = max.max(a.min(2.5));
        }
        a.map(|a| a * 100.0)
    });
    let top = (max * 100.0 / 25.0).ceil() * 25.0;
    let markers = gate_on
        .and_then(|on| rows.iter().position(|r| r.start <= on && on <= r.end))
        .map(|i| (i, "Quality gate passed".to_owned()))
        .into_iter()
        .collect();
    let chart = Chart {
        title: format!("{label} standards, {bucket}: attainment against target"),
        description: format!(
            "Attainment in percent of the target in force (ramp-adjusted) for {} from {} to {}; 100% is the target.",
            ids.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            rows[0].start,
            rows.last().map(|r| r.end).unwrap_or_default()
        ),
        x_labels: rows.iter().map(axis_label).collect(),
        y_min: 0.0,
        y_max: top,
        y_ticks: (0..=(top as i64 / 50))
            .map(|k| ((k * 50) as f64, format!("{}%", k * 50)))
            .collect(),
        reference: Some((100.0, "target (100%)".into())),
        markers,
        series,
    };
    b.push_str(&chart.render(&format!("att-{}-{bucket}", label.to_lowercase())));
    // The latest figures, in a table.
    let _ = write!(
        b,
        "<div class=\"scroll\" style=\"margin-bottom:1rem\"><table class=\"heat stack\"><caption>{label}, {bucket}: latest measured period</caption>\
         <thead><tr><th scope=\"col\">Standard</th><th scope=\"col\">Period</th><th scope=\"col\" class=\"n\">Actual</th>\
         <th scope=\"col\" class=\"n\">Target</th><th scope=\"col\">Attainment</th></tr></thead><tbody>"
    );
    for (name, id) in &ids {
        let latest = rows.iter().rev().find_map(|r| {
            r.standards
                .iter()
                .find(|s| s.standard_id == *id && s.applies && s.actual.is_some())
                .map(|s| (r, s))
        });
        let unit = standards
            .get(id)
            .map(|s| s.unit.to_string())
            .unwrap_or_default();
        if let Some((row, s)) = latest {
            let _ = write!(
                b,
                "<tr><th scope=\"row\">{}</th><td data-label=\"Period\">{}</td>\
                 <td class=\"n\" data-label=\"Actual\">{} {}</td><td class=\"n\" data-label=\"Target\">{} {}{}</td>\
                 <td class=\"cell {}\" data-label=\"Attainment\">{}</td></tr>",
                esc(name),
                row.period,
                s.actual.map_or("–".to_owned(), num),
                esc(&unit),
                match s.direction {
                    trellis_domain::Direction::AtLeast => "≥",
                    trellis_domain::Direction::AtMost => "≤",
                },
                s.target.map_or("–".to_owned(), num),
                s.ramp_percent
                    .map(|p| format!(" <span class=\"muted\">(ramp {p}%)</span>"))
                    .unwrap_or_default(),
                attainment_class(s.attainment),
                pct(s.attainment)
            );
        }
    }
    b.push_str("</tbody></table></div>");
}

/// The standing at the end of each month, with its reasons.
fn standing_history(b: &mut String, history: &History, start: NaiveDate, day: NaiveDate) {
    let mut ends = vec![];
    let mut month = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day);
    for _ in 0..12 {
        let end = month
            .checked_add_months(Months::new(1))
            .and_then(|m| m.pred_opt())
            .unwrap_or(month);
        let end = end.min(day);
        if end < start {
            break;
        }
        ends.push(end);
        match month.checked_sub_months(Months::new(1)) {
            Some(m) => month = m,
            None => break,
        }
    }
    if ends.is_empty() {
        return;
    }
    b.push_str("<h2>Standing over time</h2>");
    b.push_str(&table_start(&["At the end of", "Standing", "Why"]));
    for end in ends {
        let Some(snapshot) = history.at(end_of_day(end), TimeBasis::Business) else {
            continue;
        };
        let standing = standing_as_of(&snapshot.profile, end);
        let _ = write!(
            b,
            "<tr><td><a href=\"?as_of={end}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            end.format("%B %Y"),
            standing_badge(standing.standing),
            standing
                .reasons
                .iter()
                .map(|r| esc(r))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    b.push_str("</tbody></table></div>");
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn tenure_counts_whole_months_completed_and_says_when_a_start_is_ahead() {
        let tenure = crate::pages::rep::tenure;
        let cases = [
            (
                "2026-11-30",
                "2026-12-07",
                "started 2026-11-30 (less than a month)",
            ),
            ("2025-12-29", "2026-12-07", "started 2025-12-29 (11 months)"),
            ("2025-12-07", "2026-12-07", "started 2025-12-07 (12 months)"),
            ("2026-11-07", "2026-12-07", "started 2026-11-07 (1 month)"),
            ("2027-01-04", "2026-12-07", "starts on 2027-01-04"),
        ];
        for (start, on, says) in cases {
            assert_eq!(tenure(day(start), day(on)), says, "{start} on {on}");
        }
    }
}
