//! Uploading measurements from a CRM export, for admins, in two steps:
//! `POST /admin/measurements` takes the CSV file and asks the write API to
//! check it without recording (`POST /v1/measurements?dry_run=true`): every
//! bad row is listed with its line and reason, or the page shows what would
//! be recorded; only then `POST /admin/measurements/record` sends the same
//! file to be recorded, all rows or none, under the idempotency key the
//! preview was given (a double click records once).
//!
//! An export names its reps: a `rep` that is a name the people list gives
//! one rep is sent as that rep's id (the write API takes ids), and the
//! preview carries the file so rewritten.

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
use trellis_projections::growth::derive::RepProfile;
use trellis_projections::growth::kinds;
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
         a header line naming the columns <code>rep</code> (the rep's name or id, as the \
         people list gives them), <code>metric</code>, <code>period</code> (2026-W05, 2026-03 or 2026-Q1) and \
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
    // A CRM export names its reps: each name the people list gives one
    // rep is sent as that rep's id; any other is said beside its line.
    let profiles: Vec<RepProfile> = visit.state.models().all(kinds::REP_PROFILE).await?;
    let Named { text, unnamed } = named(&text, &Directory::of(&profiles));
    let (status, mut answer) = import(&visit, &text, true, "").await?;
    if !status.is_success() {
        said_of_names(&mut answer, &unnamed);
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
            Some(2) => "both rows".to_owned(),
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
        .and_then(|header| header.split(',').position(is_rep_column));
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
    let rep_at = columns.iter().position(|c| is_rep_column(c));
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

/// The reps a file may name, by their name as the people list gives it
/// (compared without case, runs of spaces as one): erased reps have none.
struct Directory(std::collections::HashMap<String, Vec<uuid::Uuid>>);

impl Directory {
    fn of(profiles: &[RepProfile]) -> Self {
        let mut by_name: std::collections::HashMap<String, Vec<uuid::Uuid>> =
            std::collections::HashMap::new();
        for p in profiles.iter().filter(|p| p.erased_on.is_none()) {
            by_name
                .entry(trellis_domain::values::name_key(p.name.as_ref()))
                .or_default()
                .push(p.rep_id.as_uuid());
        }
        Directory(by_name)
    }
}

/// Whether a header names the rep column, as the write API reads it.
fn is_rep_column(header: &str) -> bool {
    let header = header.trim_start_matches('\u{feff}').trim();
    header.eq_ignore_ascii_case("rep") || header.eq_ignore_ascii_case("rep_id")
}

/// A file whose reps are all ids, and why each name that is not could not
/// be, by line.
#[derive(Debug, PartialEq)]
struct Named {
    text: String,
    unnamed: std::collections::BTreeMap<usize, String>,
}

/// `csv` with every rep it names by a name the directory gives one rep
/// written as that rep's id instead. Only those lines are rewritten; every
/// line keeps its number, so what the write API says of a line is said of
/// the admin's own line. A name no rep has, or more than one has, stays as
/// written, and why is kept for the refusal.
fn named(csv: &str, reps: &Directory) -> Named {
    let mut unnamed = std::collections::BTreeMap::new();
    let mut text = String::with_capacity(csv.len());
    let mut rep_at = None;
    let mut header_seen = false;
    // Within a quoted field that runs over lines.
    let mut inside = false;
    for (i, line) in csv.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\r', '\n']);
        let end = &line[body.len()..];
        // A record with a quoted field across lines is left to the write
        // API whole: each of its lines is only part of it.
        let odd = body.matches('"').count() % 2 == 1;
        let across = inside || odd;
        inside ^= odd;
        let fields = (!across && !body.trim().is_empty())
            .then(|| one_record(body))
            .flatten();
        let Some(fields) = fields else {
            text.push_str(line);
            continue;
        };
        if !header_seen {
            header_seen = true;
            rep_at = fields.iter().position(|f| is_rep_column(f));
            text.push_str(line);
            continue;
        }
        let Some(at) = rep_at.filter(|&at| at < fields.len()) else {
            text.push_str(line);
            continue;
        };
        let rep = &fields[at];
        if rep.is_empty() || uuid::Uuid::parse_str(rep).is_ok() {
            text.push_str(line);
            continue;
        }
        match reps
            .0
            .get(&trellis_domain::values::name_key(rep))
            .map(Vec::as_slice)
        {
            Some([id]) => {
                let mut fields = fields.clone();
                fields[at] = id.to_string();
                text.push_str(&written(&fields));
                text.push_str(end);
            }
            found => {
                unnamed.insert(
                    i + 1,
                    match found {
                        Some(ids) => format!(
                            "{} reps are named “{rep}”: write the id of the one you mean, \
                             from the people list",
                            ids.len()
                        ),
                        None => format!(
                            "no rep is named “{rep}”: write the name as the people list \
                             gives it, or the rep's id from there"
                        ),
                    },
                );
                text.push_str(line);
            }
        }
    }
    Named { text, unnamed }
}

/// One CSV line's fields, trimmed as the write API trims them.
fn one_record(line: &str) -> Option<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(line.as_bytes());
    let record = reader.records().next()?.ok()?;
    Some(record.iter().map(str::to_owned).collect())
}

/// `fields` as one CSV line, quoted where they must be, with no line end.
fn written(fields: &[String]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to memory fails only with a field the writer refuses, which
    // a field read from the file never is.
    if writer.write_record(fields).is_err() {
        return fields.join(",");
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\n')
        .to_owned()
}

/// The write API's refusal with the names it could not know said instead
/// of "not a rep id": it saw the name, not what the admin meant by it.
fn said_of_names(answer: &mut Value, unnamed: &std::collections::BTreeMap<usize, String>) {
    if unnamed.is_empty() {
        return;
    }
    let Some(errors) = answer["errors"].as_array_mut() else {
        return;
    };
    let mut said = std::collections::BTreeSet::new();
    for e in errors.iter_mut() {
        let line = e["field"]
            .as_str()
            .and_then(|f| f.strip_prefix("line "))
            .and_then(|f| f.strip_suffix(": rep"))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some((line, why)) = line.and_then(|l| unnamed.get_key_value(&l)) {
            e["reason"] = Value::String(why.clone());
            said.insert(*line);
        }
    }
    for (line, why) in unnamed.iter().filter(|(l, _)| !said.contains(l)) {
        errors.push(serde_json::json!({"field": format!("line {line}: rep"), "reason": why}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(names: &[(&str, u128)]) -> Directory {
        let mut by_name: std::collections::HashMap<String, Vec<uuid::Uuid>> =
            std::collections::HashMap::new();
        for (name, id) in names {
            by_name
                .entry(trellis_domain::values::name_key(name))
                .or_default()
                .push(uuid::Uuid::from_u128(*id));
        }
        Directory(by_name)
    }

    #[test]
    fn a_rep_named_once_is_written_as_their_id_and_every_line_keeps_its_number() {
        let reps = directory(&[("Aisha Khan", 1), ("Sam Lee", 2), ("Sam  Lee", 3)]);
        let id = uuid::Uuid::from_u128(9);
        let csv = format!(
            "\u{feff}Metric,Rep,period,value\r\n\r\ncalls_made, aisha  KHAN ,2026-W05,40\r\n\
             calls_made,{id},2026-W05,41\r\ncalls_made,Sam Lee,2026-W05,42\r\n\
             calls_made,Jon Smith,2026-W05,\"1,5\"\r\ncalls_made,\"Khan, Aisha\",2026-W05,43\r\n\
             calls_made,Aisha Khan,2026-W05,44,\"a note\r\nSam Lee,said \"\"hi\"\"\r\nend\"\r\n\
             calls_made,aisha khan,2026-W06,45"
        );
        let named = named(&csv, &reps);
        let lines: Vec<&str> = named.text.split("\r\n").collect();
        assert_eq!(lines.len(), 11, "{:?}", named.text);
        assert_eq!(
            lines[2],
            format!("calls_made,{},2026-W05,40", uuid::Uuid::from_u128(1))
        );
        assert_eq!(
            lines[3],
            format!("calls_made,{id},2026-W05,41"),
            "an id stays"
        );
        assert_eq!(lines[4], "calls_made,Sam Lee,2026-W05,42", "two Sam Lees");
        assert_eq!(lines[5], "calls_made,Jon Smith,2026-W05,\"1,5\"");
        assert_eq!(lines[6], "calls_made,\"Khan, Aisha\",2026-W05,43");
        // A record whose note runs over three lines is left whole, and the
        // line after it is read again.
        assert_eq!(lines[7], "calls_made,Aisha Khan,2026-W05,44,\"a note");
        assert_eq!(lines[8], "Sam Lee,said \"\"hi\"\"");
        assert_eq!(lines[9], "end\"");
        assert_eq!(
            lines[10],
            format!("calls_made,{},2026-W06,45", uuid::Uuid::from_u128(1))
        );
        assert_eq!(named.unnamed.keys().copied().collect::<Vec<_>>(), [5, 6, 7]);
        assert!(named.unnamed[&5].starts_with("2 reps are named “Sam Lee”"));
        assert!(named.unnamed[&6].starts_with("no rep is named “Jon Smith”"));
    }

    #[test]
    fn a_name_the_api_could_not_read_is_said_as_a_name() {
        let mut answer = serde_json::json!({"errors": [
            {"field": "line 3: rep", "reason": "\"Jon\" is not a rep id (a UUID, as Trellis gave it)"},
            {"field": "line 3: value", "reason": "\"x\" is not a number"},
        ]});
        let unnamed = [
            (3, "no rep is named “Jon”".to_owned()),
            (4, "2 reps are named “Sam”".to_owned()),
        ]
        .into_iter()
        .collect();
        said_of_names(&mut answer, &unnamed);
        let reasons: Vec<(&str, &str)> = answer["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().unwrap_or(""),
                    e["reason"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            reasons,
            [
                ("line 3: rep", "no rep is named “Jon”"),
                ("line 3: value", "\"x\" is not a number"),
                ("line 4: rep", "2 reps are named “Sam”"),
            ]
        );
    }
}
