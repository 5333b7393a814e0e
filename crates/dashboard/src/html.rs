//! The page shell, escaping and the stylesheet (inlined in every page: one
//! request per page, nothing fetched from elsewhere).

use std::fmt::Write;

use trellis_http::auth::{Claims, Role};

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A moment as the pages say it: "3 Dec 2026, 14:05 UTC".
pub(crate) fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%-d %b %Y, %H:%M UTC").to_string()
}

/// A moment the API wrote (RFC 3339) as the pages say it ([`when`]); text
/// that is not one, as it is.
pub(crate) fn when_written(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map_or_else(|_| at.to_owned(), |t| when(t.with_timezone(&chrono::Utc)))
}

/// A ratio as a whole percentage rounded down, or an en dash: 99.75% of a
/// target is a miss and must not read 100%, nor 79.6% read as the 80% that
/// is near. (The tolerance keeps an exact ratio computed a hair low, such
/// as 0.8 as 0.7999…, at its value.)
pub(crate) fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), trellis_projections::growth::derive::pct)
}

/// A number as a reader wants it: thousands grouped, one decimal when it has one.
pub(crate) fn num(value: f64) -> String {
    if value.abs() >= 1000.0 {
        let whole = value.round() as i64;
        let digits = whole.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if whole < 0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if (value - value.round()).abs() < 0.05 {
        format!("{:.0}", value)
    } else {
        format!("{value:.1}")
    }
}

/// The CSS class of an attainment: met, near (80–100%), missed badly, none.
pub(crate) fn attainment_class(value: Option<f64>) -> &'static str {
    match value {
        Some(a) if a >= 1.0 => "met",
        Some(a) if a >= 0.8 => "near",
        Some(_) => "missed",
        None => "none",
    }
}

/// The page: `<html lang="en">`, a skip link, the navigation for the
/// signed-in viewer (if any), and `body` inside `<main>`.
/// Who a page is for: the signed-in person, and the token against forged
/// requests that the page's forms carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signed<'a> {
    pub claims: &'a Claims,
    pub csrf: &'a str,
    /// A person's session (not a token's): they may sign out everywhere.
    pub everywhere: bool,
    /// The person's name, when they signed in as a person.
    pub name: Option<&'a str>,
}

/// The hidden field that carries `csrf` in a form.
pub(crate) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"_csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// The one script a page may run: the print buttons (`data-print`). Allowed
/// by its hash in the pages' Content-Security-Policy, never inline handlers.
pub(crate) const PRINT_SCRIPT: &str = "document.querySelectorAll('[data-print]').forEach(function(b){b.addEventListener('click',function(){window.print()})})";

/// The Content-Security-Policy of every page: inline styles (the one
/// stylesheet and the charts' attributes), images from here or inline, the
/// print script by its hash and no other script, forms only to this site,
/// and never in a frame.
pub(crate) fn content_security_policy() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(PRINT_SCRIPT.as_bytes()));
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
             script-src 'sha256-{hash}'; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'"
        )
    });
    &CSP
}

/// The icon a browser shows beside a page's title: a trellis's lattice on
/// the dashboard's accent colour.
pub(crate) const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#0b57d0\"/>\
<path d=\"M9 23 23 9M9 9l14 14M16 5v22\" stroke=\"#fff\" stroke-width=\"3\" stroke-linecap=\"round\" fill=\"none\"/></svg>";

pub(crate) fn page(title: &str, viewer: Option<Signed<'_>>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + STYLE.len() + 1024);
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">");
    let _ = write!(out, "<title>{} · Trellis</title>", esc(title));
    out.push_str("<style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body>");
    out.push_str("<a class=\"skip\" href=\"#main\">Skip to the content</a>");
    out.push_str("<header class=\"top\"><nav aria-label=\"Main\"><a class=\"brand\" href=\"/home\">Trellis</a>");
    if let Some(Signed {
        claims,
        csrf,
        everywhere,
        name,
    }) = viewer
    {
        out.push_str("<ul>");
        match claims.role {
            Role::Rep => {
                let _ = write!(
                    out,
                    "<li><a href=\"/reps/{}\">My growth</a></li>",
                    esc(&claims.sub)
                );
            }
            Role::Leader => {
                out.push_str("<li><a href=\"/home\">My teams</a></li>");
                let _ = write!(
                    out,
                    "<li><a href=\"/leaders/{}\">My scorecard</a></li>",
                    esc(&claims.sub)
                );
            }
            Role::Admin => out.push_str(
                "<li><a href=\"/home\">Teams</a></li><li><a href=\"/admin\">Set up</a></li>",
            ),
            Role::Auditor => out.push_str(
                "<li><a href=\"/home\">Teams</a></li><li><a href=\"/admin\">Set up</a></li>\
                 <li><a href=\"/admin/access\">Sign-in</a></li>",
            ),
            _ => out.push_str("<li><a href=\"/home\">Teams</a></li>"),
        }
        out.push_str("</ul>");
        let _ = write!(
            out,
            "<form class=\"signout\" method=\"post\" action=\"/logout\"><span class=\"who\">{}</span>\
             {}<button type=\"submit\">Sign out</button>{}</form>",
            esc(&viewer_label(claims, name)),
            csrf_field(csrf),
            if everywhere {
                "<button type=\"submit\" formaction=\"/logout/everywhere\" \
                 title=\"End your sign-in on every device\">Sign out everywhere</button>"
            } else {
                ""
            }
        );
    }
    out.push_str("</nav></header><main id=\"main\" tabindex=\"-1\">");
    out.push_str(body);
    out.push_str("</main><footer class=\"foot\"><p>Trellis: every fact is an event in an append-only, hash-chained log.</p></footer>");
    if body.contains("data-print") {
        let _ = write!(out, "<script>{PRINT_SCRIPT}</script>");
    }
    out.push_str("</body></html>");
    out
}

fn viewer_label(claims: &Claims, name: Option<&str>) -> String {
    if let Some(name) = name {
        let role = match claims.role {
            Role::Admin => "admin",
            Role::Leader => "leader",
            Role::Rep => "rep",
            Role::Auditor => "auditor",
            Role::Service => "service",
        };
        return format!("{name} ({role})");
    }
    match claims.role {
        Role::Admin => "Signed in as admin".to_owned(),
        Role::Leader => "Signed in as leader".to_owned(),
        Role::Rep => "Signed in as rep".to_owned(),
        Role::Auditor => "Signed in as auditor".to_owned(),
        Role::Service => "Signed in as a service".to_owned(),
    }
}

/// A notice that something went as asked: `html` (already escaped) in
/// green, announced to screen readers.
pub(crate) fn notice_ok(html: &str) -> String {
    format!("<p class=\"notice ok\" role=\"status\">{html}</p>")
}

/// What a form that found nothing to record says (it was so already).
pub(crate) const NOTHING_CHANGED: &str = "<p class=\"notice\" role=\"status\">Nothing changed: \
     it was already so, and nothing was recorded.</p>";

/// The start of a scrolling table: one header cell per column; a label
/// that starts with `#` is a numeric column (right-aligned), shown without
/// the `#`. The caller writes the rows and `</tbody></table></div>`.
pub(crate) fn table_start(columns: &[&str]) -> String {
    table_start_as(columns, "<table>")
}

/// [`table_start`] for a table whose rows become blocks of labelled lines
/// on a phone, where its columns would not fit side by side: each cell
/// must carry its column's name as `data-label`.
pub(crate) fn stacked_table_start(columns: &[&str]) -> String {
    table_start_as(columns, "<table class=\"stack\">")
}

fn table_start_as(columns: &[&str], table: &str) -> String {
    let mut out = format!("<div class=\"scroll\">{table}<thead><tr>");
    for column in columns {
        match column.strip_prefix('#') {
            Some(label) => {
                let label = if label.is_empty() { "#" } else { label };
                let _ = write!(out, "<th scope=\"col\" class=\"n\">{}</th>", esc(label));
            }
            None => {
                let _ = write!(out, "<th scope=\"col\">{}</th>", esc(column));
            }
        }
    }
    out.push_str("</tr></thead><tbody>");
    out
}

/// How an improvement plan ended, in words.
pub(crate) fn outcome(outcome: trellis_domain::rep::PlanOutcome) -> &'static str {
    use trellis_domain::rep::PlanOutcome as O;
    match outcome {
        O::Met => "met",
        O::Extended => "extended",
        O::NotMet => "not met",
    }
}

/// A standing as a coloured badge.
pub(crate) fn standing_badge(kind: trellis_projections::growth::StandingKind) -> String {
    use trellis_projections::growth::StandingKind as K;
    let (class, label) = match kind {
        K::Thriving => ("thriving", "Thriving"),
        K::OnTrack => ("ontrack", "On track"),
        K::NeedsSupport => ("support", "Needs support"),
        K::OnImprovementPlan => ("plan", "On an improvement plan"),
        K::Departed => ("departed", "Departed"),
    };
    format!("<span class=\"badge {class}\">{label}</span>")
}

const STYLE: &str = r#"
:root{--ink:#1b1f24;--muted:#4a5360;--line:#d5dae1;--bg:#f6f7f9;--card:#fff;--accent:#0b57d0;--focus:#ffbf47}
*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg);line-height:1.45}
body{margin:0}
a{color:var(--accent)}
a:hover{text-decoration-thickness:2px}
:focus-visible,input:focus,select:focus,textarea:focus{outline:3px solid var(--ink);outline-offset:2px;box-shadow:0 0 0 2px var(--focus)}
.top :focus-visible{outline-color:var(--focus);box-shadow:none}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem 1rem;z-index:10}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
.skip:focus{left:.5rem}
.top{background:#15233b;color:#fff}
.top nav{max-width:1200px;margin:0 auto;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.25rem;padding:.6rem 1rem}
.top a{color:#fff}
.top .brand{font-weight:700;font-size:1.15rem;text-decoration:none;letter-spacing:.02em}
.top ul{display:flex;gap:1rem;list-style:none;margin:0;padding:0;flex-wrap:wrap}
.signout{margin-left:auto;display:flex;gap:.75rem;align-items:center}
.signout .who{color:#dfe6f3;font-size:.9rem}
button,.button{font:inherit;border:1px solid #15233b;background:#fff;color:#15233b;border-radius:6px;padding:.35rem .8rem;cursor:pointer;text-decoration:none;display:inline-block}
button.primary,a.button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
main{max-width:1200px;margin:0 auto;padding:1rem}
main:focus{outline:none}
main{overflow-wrap:break-word}
.timeline li,.card{overflow-wrap:anywhere}
.card table{overflow-wrap:break-word}
h1{font-size:1.7rem;margin:.6rem 0 .2rem}
h2{font-size:1.25rem;margin:1.6rem 0 .6rem;padding-bottom:.25rem;border-bottom:2px solid var(--line)}
h3{font-size:1.05rem;margin:1rem 0 .4rem}
.lead{color:var(--muted);margin:.2rem 0 1rem}
.muted{color:var(--muted)}
.grid{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(260px,1fr))}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:.9rem 1rem}
.card h3{margin-top:0}
.stat{font-size:1.8rem;font-weight:700;margin:.1rem 0}
.stat small{font-size:.9rem;font-weight:400;color:var(--muted)}
.badge{display:inline-block;border-radius:999px;padding:.1rem .65rem;font-size:.85rem;font-weight:600;border:1px solid transparent;white-space:nowrap}
.badge.thriving{background:#d4f2dc;color:#0b4a1d;border-color:#8fd3a2}
.badge.ontrack{background:#dbe8ff;color:#0b3a8c;border-color:#a5c2f5}
.badge.support{background:#fff0c2;color:#5c4300;border-color:#e6c45c}
.badge.plan{background:#f0dcff;color:#4c1a73;border-color:#c9a0eb}
.badge.departed{background:#e4e6ea;color:#3a4048;border-color:#c2c7cf}
.tag{display:inline-block;font-size:.78rem;font-weight:600;border-radius:4px;padding:0 .4rem;background:#eef0f3;color:#3a4048;margin-left:.35rem}
.tag.private{background:#3a4048;color:#fff}
.tag.overdue{background:#f9d0d0;color:#6b0f0f}
.tag.praise{background:#d4f2dc;color:#0b4a1d}
.tag.constructive{background:#fff0c2;color:#5c4300}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid var(--line);border-radius:8px;background:#fff}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.93rem}
th,td{padding:.4rem .55rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.45rem .55rem}
.heat-title{font-size:1rem;margin:.75rem 0 .35rem}
.heat td.cell{text-align:center;font-variant-numeric:tabular-nums;min-width:3.2rem;font-size:.85rem}
.met{background:#c8ecd0;color:#0b3d17}
.near{background:#fff0c2;color:#5c4300}
.missed{background:#f9d0d0;color:#6b0f0f}
.none{background:#f2f3f5;color:#4a5360}
.legend{display:flex;flex-wrap:wrap;gap:.4rem 1rem;list-style:none;padding:0;margin:.4rem 0;font-size:.88rem}
.legend li{display:flex;align-items:center;gap:.35rem}
.swatch{display:inline-block;width:1.1rem;height:.8rem;border-radius:3px;border:1px solid #0003}
.chart{background:#fff;border:1px solid var(--line);border-radius:10px;padding:.5rem .75rem;margin:.5rem 0 1rem}
.chart svg.plot{width:100%;height:auto;display:block}
.legend svg{flex:none}
.chart figcaption{font-weight:600;margin:.2rem 0}
.timeline{list-style:none;margin:0;padding:0}
.timeline li{background:#fff;border:1px solid var(--line);border-left:5px solid #8a94a3;border-radius:8px;padding:.5rem .75rem;margin:.45rem 0}
.timeline li.feedback-praise{border-left-color:#2e9e50}
.timeline li.feedback-constructive{border-left-color:#d9a400}
.timeline li.coaching{border-left-color:#0b57d0}
.timeline li.plan{border-left-color:#8b3fc7}
.timeline li.support{border-left-color:#d2572b}
.timeline li.correction{border-left-color:#6b0f0f}
.timeline .when{font-weight:600;margin-right:.5rem;font-variant-numeric:tabular-nums}
.timeline p{margin:.25rem 0}
.timeline .reasons li{background:none;border:0;border-radius:0;padding:0;margin:.15rem 0}
.asof{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;background:#fff;border:1px solid var(--line);border-radius:10px;padding:.6rem .8rem;margin:.6rem 0}
.asof label{display:flex;flex-direction:column;font-weight:600;font-size:.9rem}
input{font:inherit;padding:.3rem .45rem;border:1px solid #8a94a3;border-radius:6px}
textarea{font:inherit;width:100%;min-height:7rem;padding:.5rem;border:1px solid #8a94a3;border-radius:6px;font-family:ui-monospace,monospace;font-size:.85rem}
.typed dt{font-weight:600;margin-top:.5rem}
.typed dd{margin:0 0 .25rem;white-space:pre-wrap}
.notice{background:#fff8e1;border:1px solid #e6c45c;border-radius:8px;padding:.6rem .8rem;margin:.6rem 0}
.notice.ok{background:#e8f5e9;border-color:#6fae7c}
.form .field{margin:0 0 1rem;border:0;padding:0}
.form label,.form legend{font-weight:600;display:block;margin-bottom:.25rem}
.form fieldset label{font-weight:400;display:flex;gap:.5rem;align-items:center;min-height:44px}
.form input[type=text],.form input[type=number]{font:inherit;min-height:44px;padding:.4rem;border:1px solid #8a94a3;border-radius:6px;width:100%}
.form fieldset.item{border:1px solid var(--line);border-radius:8px;padding:.6rem .8rem}
.form fieldset.item label{font-weight:600;margin-top:.4rem}
.form select,.form input[type=date]{font:inherit;min-height:44px;padding:.4rem;border:1px solid #8a94a3;border-radius:6px;max-width:100%}
.form textarea{font-family:inherit;font-size:1rem}
.form [aria-invalid=true]{border-color:#b3261e;outline:2px solid #b3261e}
form.inline{display:inline}
.form input[type=file]{max-width:100%;font:inherit}
code.id{font-size:.75rem;white-space:nowrap}
code.secret{word-break:break-all}
.lead code{overflow-wrap:anywhere}
ul.todo li{margin:.5rem 0}
.field-error{color:#8c1d18;margin:.3rem 0 0;font-weight:600}
.error{background:#fde8e8;border:1px solid #e08a8a;border-radius:8px;padding:.6rem .8rem;margin:.6rem 0;color:#6b0f0f}
.signin{max-width:640px;margin:2rem auto}
.reasons{margin:.3rem 0 0 1.1rem;padding:0}
.bar{height:.6rem;background:#e4e6ea;border-radius:4px;overflow:hidden;margin-top:.3rem}
.bar span{display:block;height:100%;background:var(--accent)}
.foot{max-width:1200px;margin:2rem auto 1rem;padding:0 1rem;color:var(--muted);font-size:.85rem}
@media (max-width:640px){h1{font-size:1.35rem}main{padding:.6rem}.signout{flex-wrap:wrap;justify-content:flex-end;row-gap:.4rem}.signout .who{flex-basis:100%;text-align:right}
.chart{overflow-x:auto}.chart svg.plot{min-width:600px}.chart svg.plot text{font-size:14px}
table.stack thead{position:absolute;left:-9999px}
table.stack tr{display:block;border-bottom:1px solid var(--line);padding:.35rem 0}
table.stack td{display:flex;gap:.6rem;border:0;padding:.1rem .55rem;text-align:left}
table.stack td:empty{display:none}
table.stack td::before{content:attr(data-label);flex:none;width:5.5rem;font-weight:600;color:var(--muted)}
table.stack th[scope=row]{display:block;text-align:left;padding:.2rem .55rem}
table.stack td>span{min-width:0;overflow-wrap:anywhere}
.chart,.scroll.latest{direction:rtl}.chart>*,.scroll.latest>*{direction:ltr}
.scroll.latest tr>:first-child{position:sticky;left:0;background:#fff;z-index:1;box-shadow:inset -1px 0 0 var(--line),6px 0 6px -4px rgba(27,31,36,.3)}
p.actions a{display:inline-block;min-height:44px;padding:.65rem .35rem;box-sizing:border-box}}
@media print{.top,.foot,.noprint,.skip{display:none}body,html{background:#fff}.card,.chart{break-inside:avoid}}
"#;

/// What the sign-in page says above its ways in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignInNote<'a> {
    /// Why the last sign-in did not work.
    Refused(&'a str),
    /// That the browser was signed out.
    Done(&'a str),
}

/// The sign-in page, with what it has to say: the company's identity
/// provider when there is one, what to do with a one-time link, and
/// (folded away) a developer token. `next`: where to go after signing in.
pub(crate) fn sign_in_html(
    state: &crate::state::DashboardState,
    message: Option<SignInNote<'_>>,
    next: Option<&str>,
) -> String {
    let message = match message {
        Some(SignInNote::Refused(m)) => format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m)),
        Some(SignInNote::Done(m)) => format!("<p class=\"notice\" role=\"status\">{}</p>", esc(m)),
        None => String::new(),
    };
    let next_field = next
        .map(|n| format!("<input type=\"hidden\" name=\"next\" value=\"{}\">", esc(n)))
        .unwrap_or_default();
    let provider = state.access().and_then(|a| a.oidc()).map(|_| {
        let next = next
            .map(|n| format!("?next={}", percent(n)))
            .unwrap_or_default();
        format!(
            "<p><a class=\"button primary\" href=\"/auth/oidc/start{}\">Sign in with your \
             company account</a></p>",
            esc(&next)
        )
    });
    let lead = if provider.is_some() {
        "Use your company account. Someone without one signs in with the one-time link an \
         admin sent them."
    } else {
        "Open the one-time sign-in link your Trellis admin sent you. Each link works once; \
         ask them for a new one when it has been used or has expired."
    };
    let body = format!(
        "<div class=\"signin\"><h1>Sign in to Trellis</h1><p class=\"lead\">{lead}</p>{message}\
         {}<details class=\"card\"><summary>Sign in with a developer token</summary>\
         <form method=\"post\" action=\"/login\">{next_field}\
         <label for=\"token\"><strong>Token</strong></label>\
         <textarea id=\"token\" name=\"token\" required autocomplete=\"off\" spellcheck=\"false\" \
         aria-describedby=\"token-help\"></textarea>\
         <p id=\"token-help\" class=\"muted\">For development and tests: a token from \
         <code>trellis token</code>.</p>\
         <button type=\"submit\">Sign in with the token</button></form></details></div>",
        provider.unwrap_or_default()
    );
    page("Sign in", None, &body)
}

/// `text` percent-encoded for a query value.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `text` beginning with a capital, as words standing alone on a page do
/// (only an ASCII first letter is changed).
pub(crate) fn capitalised(mut text: String) -> String {
    if let Some(first) = text.get(..1) {
        let upper = first.to_ascii_uppercase();
        text.replace_range(..1, &upper);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{pct, when_written};

    #[test]
    fn a_time_the_api_wrote_reads_as_the_pages_say_times() {
        assert_eq!(
            when_written("2026-12-07T18:03:39.512Z"),
            "7 Dec 2026, 18:03 UTC"
        );
        assert_eq!(
            when_written("2026-12-07T19:03:39+01:00"),
            "7 Dec 2026, 18:03 UTC",
            "said in UTC, as every time on the pages"
        );
        assert_eq!(when_written("soon"), "soon", "not a time: as it is");
    }

    #[test]
    fn a_percentage_below_a_threshold_never_reads_as_it() {
        assert_eq!(pct(Some(0.9975)), "99%", "a miss by a hair is not met");
        assert_eq!(pct(Some(0.796)), "79%", "under 80% is not near");
        assert_eq!(pct(Some(0.8)), "80%");
        assert_eq!(
            pct(Some(79.8 / 99.75)),
            "80%",
            "exactly 80%, computed a hair low"
        );
        assert_eq!(pct(Some(1.0)), "100%");
        assert_eq!(pct(Some(1.234)), "123%");
        assert_eq!(pct(None), "–");
    }
}
