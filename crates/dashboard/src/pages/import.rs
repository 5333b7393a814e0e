//! Uploading measurements from a CRM export, for admins, in two steps:
//! `POST /admin/measurements` takes the CSV file and asks the write API to
//! check it without recording (`POST /v1/measurements?dry_run=true`): every
//! bad row is listed with its line and reason, or the page shows what would
//! be recorded; only then `POST /admin/measurements/record` sends the same
//! file to be recorded, all rows or none, under the idempotency key the
//! preview was given (a double click records once).

use std::fmt::Write as _;

use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::{AdminVisit, Posted};
use crate::error::PageError;
use crate::forms::{Write, field, new_key, plain, send};
use crate::html::{csrf_field, esc, page, stacked_table_start, table_start};
use trellis_queries::export::plural;

/// The data lines the preview shows.
const PREVIEWED: usize = 10;

/// `GET`: the upload form.
pub(crate) async fn form(visit: AdminVisit) -> Result<Response, PageError> {
    Ok(shown(&visit, StatusCode::OK, ""))
}

/// The page: `above` (a result, HTML), then the upload form.
fn shown(visit: &AdminVisit, status: StatusCode, above: &str) -> Response {
    let mut b = String::from(
        "<h1>Upload measurements</h1><p class=\"lead\">A CSV file exported from your CRM, with \
         a header line naming the columns <code>rep</code> (the rep's id, as the people list \
         gives it), <code>metric</code>, <code>period</code> (2026-W05, 2026-03 or 2026-Q1) and \
         <code>value</code>. Trellis checks every row first and records nothing until you \
         confirm; then it records every row or none.</p>",
    );
    b.push_str(above);
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" action=\"/admin/measurements\" \
         enctype=\"multipart/form-data\">{}\
         <div class=\"field\"><label for=\"file\">CSV file</label>\
         <input type=\"file\" id=\"file\" name=\"file\" accept=\".csv,text/csv\" required></div>\
         <p><button class=\"primary\" type=\"submit\">Check the file</button> \
         <a href=\"/admin#standards\">Cancel</a></p></form>",
        csrf_field(visit.viewer.signed().csrf)
    );
    (
        status,
        Html(page("Upload measurements", Some(visit.viewer.signed()), &b)),
    )
        .into_response()
}

/// `POST /admin/measurements`: checks the uploaded file, recording nothing.
pub(crate) async fn check(
    visit: AdminVisit,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let mut multipart = multipart.map_err(|e| {
        PageError::BadRequest(format!(
            "Choose a CSV file and send the form again ({}).",
            e.body_text()
        ))
    })?;
    let (mut csrf, mut csv) = (None, None);
    while let Some(part) = multipart
        .next_field()
        .await
        .map_err(|e| PageError::BadRequest(format!("The upload could not be read: {e}")))?
    {
        match part.name() {
            Some("_csrf") => csrf = part.text().await.ok(),
            Some("file") => {
                let bytes = part.bytes().await.map_err(|e| {
                    PageError::BadRequest(format!("The file could not be read: {e}"))
                })?;
                csv = Some(bytes);
            }
            _ => {}
        }
    }
    visit
        .viewer
        .check_form(&visit.state, &headers, csrf.as_deref())?;
    // No file, or an empty one: said above the form, to choose another.
    let Some(csv) = csv.filter(|c| !c.iter().all(u8::is_ascii_whitespace)) else {
        let why = "<div class=\"error\" role=\"alert\"><p><strong>Nothing was recorded.</strong> \
                   The file is empty, or none was chosen: choose the CSV export (a header line, \
                   then one line a measurement) and check it again.</p></div>";
        return Ok(shown(&visit, StatusCode::UNPROCESSABLE_ENTITY, why));
    };
    let Ok(text) = String::from_utf8(csv.to_vec()) else {
        let why = "<div class=\"error\" role=\"alert\"><p><strong>Nothing was recorded.</strong> \
                   The file is not UTF-8 text: save the export as CSV (UTF-8) and upload it again.</p></div>";
        return Ok(shown(&visit, StatusCode::UNPROCESSABLE_ENTITY, why));
    };
    let (status, answer) = import(&visit, &text, true, "").await?;
    if !status.is_success() {
        return Ok(shown(&visit, status, &refusal(&answer)));
    }
    let mut b = String::new();
    let _ = write!(
        b,
        "<section class=\"card\" aria-labelledby=\"preview-h\"><h2 id=\"preview-h\">Every row can be recorded</h2>\
         <p role=\"status\">{}; nothing is recorded yet.</p>",
        counted(&answer)
    );
    let replaced: Vec<&Value> = answer["replaced"]
        .as_array()
        .map(|rows| rows.iter().collect())
        .unwrap_or_default();
    let replacing: Vec<uuid::Uuid> = replaced
        .iter()
        .take(REPLACEMENTS_SHOWN)
        .filter_map(|r| r["rep_id"].as_str())
        .filter_map(|id| uuid::Uuid::parse_str(id).ok())
        .collect();
    let names = rep_names(&visit, &text, &replacing).await?;
    if !replaced.is_empty() {
        b.push_str(&replacements(&replaced, &names));
        b.push_str("<h3 id=\"rows-h\">The file</h3>");
    }
    b.push_str(&preview(&text, &names));
    let _ = write!(
        b,
        "<form method=\"post\" action=\"/admin/measurements/record\">{}\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{}\">\
         <textarea name=\"csv\" hidden>{}</textarea>\
         <p><button class=\"primary\" type=\"submit\">Record {}</button></p></form></section>",
        csrf_field(visit.viewer.signed().csrf),
        new_key(),
        esc(&text),
        match answer["rows"].as_u64() {
            Some(1) => "the row".to_owned(),
            rows => format!("all {} rows", rows.unwrap_or(0)),
        }
    );
    Ok(shown(&visit, StatusCode::OK, &b))
}

/// `POST /admin/measurements/record`: records the checked file.
pub(crate) async fn record(
    Posted { visit, typed }: Posted<AdminVisit>,
) -> Result<Response, PageError> {
    let text = typed.get("csv").map_or("", String::as_str);
    let (status, answer) = import(&visit, text, false, field(&typed, "idempotency_key")).await?;
    if !status.is_success() {
        return Ok(shown(&visit, status, &refusal(&answer)));
    }
    let said = format!(
        "<p class=\"notice\" role=\"status\">Recorded: {}.</p>",
        counted(&answer)
    );
    Ok(shown(&visit, StatusCode::OK, &said))
}

/// "100 rows for 4 reps", "1 row for 1 rep": the import's answer counted.
fn counted(answer: &serde_json::Value) -> String {
    let (rows, reps) = (
        answer["rows"].as_u64().unwrap_or(0),
        answer["reps"].as_u64().unwrap_or(0),
    );
    format!(
        "{rows} {} for {reps} {}",
        if rows == 1 { "row" } else { "rows" },
        if reps == 1 { "rep" } else { "reps" }
    )
}

/// Sends `csv` to the import, checking only when `dry_run`.
async fn import(
    visit: &AdminVisit,
    csv: &str,
    dry_run: bool,
    key: &str,
) -> Result<(StatusCode, Value), PageError> {
    let path = if dry_run {
        "/v1/measurements?dry_run=true"
    } else {
        "/v1/measurements"
    };
    let request = Write {
        method: &Method::POST,
        path,
        key,
        if_match: None,
        content_type: "text/csv",
        body: csv.as_bytes().to_vec(),
    };
    send(&visit.state, &visit.viewer, request).await
}

/// Why nothing was recorded: every bad row, by line, with its reason.
fn refusal(answer: &Value) -> String {
    let mut rows: Vec<(usize, String, String)> = answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let place = e["field"].as_str().unwrap_or("");
            let (line, column) = place.split_once(": ").unwrap_or((place, ""));
            let number = line
                .strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (
                number,
                column.to_owned(),
                plain(e["reason"].as_str().unwrap_or("is not valid")),
            )
        })
        .collect();
    rows.sort_by_key(|(line, _, _)| *line);
    let mut b = String::from(
        "<div class=\"error\" role=\"alert\"><p><strong>Nothing was recorded.</strong> ",
    );
    if rows.is_empty() {
        let _ = write!(
            b,
            "{}</p></div>",
            esc(answer["detail"]
                .as_str()
                .unwrap_or("Trellis could not read this file."))
        );
        return b;
    }
    // A line with two faults is one row to mend.
    let lines = rows
        .iter()
        .map(|(line, _, _)| *line)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let _ = write!(
        b,
        "{} cannot be recorded. Correct {} in the file and upload it again.</p></div>{}",
        plural(lines as u64, "row", "rows"),
        if lines == 1 { "it" } else { "them" },
        table_start(&["#Line", "Column", "Why"])
    );
    for (line, column, why) in rows {
        let _ = write!(
            b,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            if line == 0 {
                String::new()
            } else {
                line.to_string()
            },
            esc(&column),
            esc(&why)
        );
    }
    b.push_str("</tbody></table></div>");
    b
}

/// The names of the reps the previewed rows are about, and of the reps
/// `also` names, by id as the file gives it: an admin reads names, not ids.
async fn rep_names(
    visit: &AdminVisit,
    csv: &str,
    also: &[uuid::Uuid],
) -> Result<std::collections::BTreeMap<String, String>, PageError> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let at = lines
        .next()
        .and_then(|header| header.split(',').map(str::trim).position(|c| c == "rep"));
    let previewed = at.into_iter().flat_map(|at| {
        lines
            .clone()
            .take(PREVIEWED)
            .filter_map(move |line| line.split(',').nth(at))
            .filter_map(|id| uuid::Uuid::parse_str(id.trim()).ok())
    });
    let ids: std::collections::BTreeSet<trellis_domain::RepId> = previewed
        .chain(also.iter().copied())
        .map(trellis_domain::RepId::from_uuid)
        .collect();
    Ok(crate::data::profiles(&visit.state, ids)
        .await?
        .into_iter()
        .map(|p| (p.rep_id.to_string(), p.name.to_string()))
        .collect())
}

/// How many of the values a file replaces are listed before it is recorded.
const REPLACEMENTS_SHOWN: usize = 50;

/// The rows whose value replaces one recorded before, with both values:
/// what recording the file would change, beyond adding.
fn replacements(replaced: &[&Value], names: &std::collections::BTreeMap<String, String>) -> String {
    let mut b = format!(
        "<h3 id=\"replaced-h\">{} recorded before</h3>\
         <p>Recording the file replaces {}; the value recorded before stays in the audit \
         trail, corrected as “re-imported”.</p>",
        plural(
            replaced.len() as u64,
            "row replaces a value",
            "rows replace values"
        ),
        if replaced.len() == 1 { "it" } else { "each" }
    );
    b.push_str(&stacked_table_start(&[
        "#Line",
        "Rep",
        "Metric",
        "Period",
        "#Recorded",
        "#New",
    ]));
    let number = |v: &Value| v.as_f64().map_or(String::new(), |n| n.to_string());
    for r in replaced.iter().take(REPLACEMENTS_SHOWN) {
        let row = r["row"].as_str().unwrap_or("");
        let rep = r["rep_id"].as_str().unwrap_or("");
        let _ = write!(
            b,
            "<tr><td class=\"n\" data-label=\"Line\">{}</td><td data-label=\"Rep\">{}</td>\
             <td data-label=\"Metric\">{}</td><td data-label=\"Period\">{}</td>\
             <td class=\"n\" data-label=\"Recorded\">{}</td><td class=\"n\" data-label=\"New\">{}</td></tr>",
            esc(row.strip_prefix("line ").unwrap_or(row)),
            esc(names.get(rep).map_or(rep, String::as_str)),
            esc(r["metric"].as_str().unwrap_or("")),
            esc(r["period"].as_str().unwrap_or("")),
            esc(&number(&r["was"])),
            esc(&number(&r["value"])),
        );
    }
    b.push_str("</tbody></table></div>");
    if replaced.len() > REPLACEMENTS_SHOWN {
        let _ = write!(
            b,
            "<p class=\"muted\">and {} more.</p>",
            replaced.len() - REPLACEMENTS_SHOWN
        );
    }
    b
}

/// The file's first lines as a table (for the eye only: the write API is
/// what reads the file).
fn preview(csv: &str, names: &std::collections::BTreeMap<String, String>) -> String {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return String::new();
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let rep_at = columns.iter().position(|c| *c == "rep");
    let mut b = table_start(&columns);
    let mut more = 0;
    for (i, line) in lines.enumerate() {
        if i >= PREVIEWED {
            more += 1;
            continue;
        }
        b.push_str("<tr>");
        for (at, cell) in line.split(',').enumerate() {
            let cell = cell.trim();
            let shown = match names.get(cell) {
                Some(name) if Some(at) == rep_at => name.as_str(),
                _ => cell,
            };
            let _ = write!(b, "<td>{}</td>", esc(shown));
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table></div>");
    if more > 0 {
        let _ = write!(b, "<p class=\"muted\">and {more} more rows.</p>");
    }
    b
}
