//! Bulk measurement imports: a JSON array or a CSV export from a CRM report,
//! up to 50,000 rows, recorded all or nothing.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use trellis_domain::rep::{
    Correction, FactCorrected, MeasurementSource, PerformanceMeasured, RepEvent,
};
use trellis_domain::{
    Aggregate, MeasurementId, MetricName, MetricValue, Period, RepAggregate, RepCommand, RepId,
};
use trellis_eventstore::{ExpectedVersion, StreamWrite, derived_command_id};
use uuid::Uuid;

use super::reps::measurement_values;
use crate::cache::Loaded;
use crate::extract::WriteHeaders;
use crate::measured::measures_of;
use crate::policy::{RepAccess, Scope, leads_some, rep_write};
use crate::respond::WriteErrors;
use crate::respond::{respond_with, stream};
use crate::state::CommandState;
use crate::wire::{self, Imported};
use crate::write::{MAX_ATTEMPTS, Stored, WriteCtx, Written, backoff, load, to_new_event};
use trellis_http::extract::{Principal, content_type, fingerprint, parse_json, read_body};
use trellis_http::problem::{ApiError, FieldError, Fields};

/// How many reps' streams are loaded at once.
const LOAD_CONCURRENCY: usize = 16;

/// One parsed row, with where it came from for error messages.
struct Row {
    /// "line 12" (CSV) or "[11]" (JSON).
    place: String,
    rep_id: RepId,
    metric: MetricName,
    period: Period,
    value: MetricValue,
}

impl Row {
    /// Where a refusal about `column` (the period, the metric) points: "line
    /// 12: period" or "[11].period", as a value that does not parse is
    /// named; the row alone when it is about the row.
    fn field(&self, column: Option<std::borrow::Cow<'static, str>>) -> String {
        match column {
            Some(column) if self.place.starts_with('[') => format!("{}.{column}", self.place),
            Some(column) => format!("{}: {column}", self.place),
            None => self.place.clone(),
        }
    }
}

fn parse_rows_json(body: &[u8], f: &mut Fields) -> Result<Vec<Row>, ApiError> {
    let rows: Vec<wire::MeasurementRow> = parse_json(body)?;
    let mut parsed = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let place = format!("[{i}]");
        if let Some((metric, period, value)) =
            measurement_values(f, &format!("{place}."), &row.metric, &row.period, row.value)
        {
            parsed.push(Row {
                place,
                rep_id: RepId::from_uuid(row.rep_id),
                metric,
                period,
                value,
            });
        }
    }
    Ok(parsed)
}

fn parse_rows_csv(body: &[u8], f: &mut Fields, max_rows: usize) -> Result<Vec<Row>, ApiError> {
    // A spreadsheet's "CSV UTF-8" starts with a byte order mark, which the
    // csv reader keeps in the first column's name.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(body);
    let headers = reader
        .byte_headers()
        .map_err(|e| ApiError::MalformedBody(format!("the CSV header line cannot be read: {e}")))?
        .clone();
    let column = |names: &[&str]| {
        headers.iter().position(|h| {
            let h = String::from_utf8_lossy(h).trim().to_ascii_lowercase();
            names.contains(&h.as_str())
        })
    };
    let (Some(rep), Some(metric), Some(period), Some(value)) = (
        column(&["rep", "rep_id"]),
        column(&["metric"]),
        column(&["period"]),
        column(&["value"]),
    ) else {
        return Err(ApiError::MalformedBody(
            "the CSV must start with a header line naming the columns rep, metric, period and \
             value (in any order), e.g. `rep,metric,period,value`"
                .into(),
        ));
    };
    let mut parsed = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut count = 0usize;
    let mut lines = Lines::of(body);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(ApiError::MalformedBody(format!(
                    "the CSV cannot be read: {e}"
                )));
            }
        }
        count += 1;
        if count > max_rows {
            return Err(too_many(max_rows));
        }
        let line = record
            .position()
            .map_or(count + 1, |p| lines.line_at(p.byte() as usize));
        let place = format!("line {line}");
        if record.len() != headers.len() {
            f.push(
                place,
                format!(
                    "the line has {} columns where the header has {}; a value with a comma \
                     must be quoted (\"1,234\") or written without the comma",
                    record.len(),
                    headers.len()
                ),
            );
            continue;
        }
        let field = |index: usize, name: &str, f: &mut Fields| -> Option<String> {
            let Some(bytes) = record.get(index) else {
                f.push(
                    format!("{place}: {name}"),
                    "missing: the line has too few columns",
                );
                return None;
            };
            match std::str::from_utf8(bytes) {
                Ok(text) => Some(text.to_owned()),
                Err(e) => {
                    f.push(
                        format!("{place}: {name}"),
                        format!(
                            "not valid UTF-8 (byte {} of the field); save the export as UTF-8",
                            e.valid_up_to() + 1
                        ),
                    );
                    None
                }
            }
        };
        let (rep_text, metric_text, period_text, value_text) = (
            field(rep, "rep", f),
            field(metric, "metric", f),
            field(period, "period", f),
            field(value, "value", f),
        );
        let (Some(rep_text), Some(metric_text), Some(period_text), Some(value_text)) =
            (rep_text, metric_text, period_text, value_text)
        else {
            continue;
        };
        let rep_id = f.check(
            format!("{place}: rep"),
            Uuid::parse_str(&rep_text)
                .map(RepId::from_uuid)
                .map_err(|_| format!("{rep_text:?} is not a rep id (a UUID, as Trellis gave it)")),
        );
        let number = f.check(
            format!("{place}: value"),
            value_text
                .parse::<f64>()
                .map_err(|_| format!("{value_text:?} is not a number (write 12 or 12.5)")),
        );
        let values = number.and_then(|number| {
            measurement_values(f, &format!("{place}: "), &metric_text, &period_text, number)
        });
        if let (Some(rep_id), Some((metric, period, value))) = (rep_id, values) {
            parsed.push(Row {
                place,
                rep_id,
                metric,
                period,
                value,
            });
        }
    }
    Ok(parsed)
}

/// The line a record of a CSV body starts on, counted as an editor counts
/// them, whether lines end in LF, CR LF or CR. The csv reader places a
/// record where it began to read it: before the empty lines it skipped,
/// and in a file whose lines end in CR LF (a spreadsheet's export on
/// Windows) at the LF of the line before, so its own count was one short on
/// every line of such a file; it counts no lone CR at all.
struct Lines<'b> {
    body: &'b [u8],
    /// Newlines before `counted`.
    seen: usize,
    counted: usize,
}

impl<'b> Lines<'b> {
    fn of(body: &'b [u8]) -> Self {
        Lines {
            body,
            seen: 0,
            counted: 0,
        }
    }

    /// The line of the record the reader placed at byte `at` (records come
    /// in order, so each call counts on from the last).
    fn line_at(&mut self, at: usize) -> usize {
        // The record starts after the line ends the reader passed over.
        let skipped = self
            .body
            .get(at..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let end = (at + skipped).min(self.body.len()).max(self.counted);
        // A line ends in LF, CR LF or a CR alone (an old Mac's export): a
        // CR counts unless an LF follows it.
        let body = self.body;
        self.seen += (self.counted..end)
            .filter(|&i| match body[i] {
                b'\n' => true,
                b'\r' => body.get(i + 1) != Some(&b'\n'),
                _ => false,
            })
            .count();
        self.counted = end;
        self.seen + 1
    }
}

/// Two rows about one rep, metric and period with different values: the
/// file contradicts itself, and the later row would silently replace the
/// earlier. Each such later row is refused, naming the first.
fn contradictions(rows: &[Row], f: &mut Fields) {
    let mut first: BTreeMap<(RepId, &MetricName, Period), &Row> = BTreeMap::new();
    for row in rows {
        match first.entry((row.rep_id, &row.metric, row.period)) {
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(row);
            }
            std::collections::btree_map::Entry::Occupied(earlier)
                if earlier.get().value != row.value =>
            {
                let earlier = earlier.get();
                f.push(
                    row.field(Some("value".into())),
                    format!(
                        "{} for the same rep, metric and period as {}, which gives {}: keep \
                         the right one of the two rows",
                        row.value.get(),
                        earlier.place,
                        earlier.value.get()
                    ),
                );
            }
            std::collections::btree_map::Entry::Occupied(_) => {}
        }
    }
}

/// The value `event` replaces, when it corrects a measurement of the rep
/// in `state` (a re-imported value).
fn replaces(state: &trellis_domain::RepState, event: &RepEvent) -> Option<f64> {
    let RepEvent::FactCorrected(FactCorrected {
        fact_id,
        correction: Correction::MeasuredValue { .. },
        ..
    }) = event
    else {
        return None;
    };
    let rep = state.rep()?;
    rep.measurement(MeasurementId::from_uuid(*fact_id))
        .map(|m| m.value.get())
}

fn too_many(max_rows: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "an import may carry at most {max_rows} rows; split the file into several requests"
    ))
}

/// What an import answers: 200 with what it recorded, or would record on a
/// dry run (no stream version: the `ETag` is "0").
fn imported(
    rows: usize,
    reps: usize,
    events: usize,
    replayed: bool,
    dry_run: bool,
    replaced: Vec<wire::Replaced>,
) -> Response {
    let written = Written {
        stream_version: 0,
        events,
        replayed,
    };
    respond_with(
        false,
        written,
        &Imported {
            rows,
            reps,
            events,
            replayed,
            dry_run,
            replaced,
        },
    )
}

/// The query of an import.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `true`: check every row (its format and the domain's rules) and
    /// answer what would be recorded, or every bad row, recording nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Import measurements: a JSON array of `{rep_id, metric, period, value}`, or
/// a CSV file (`Content-Type: text/csv`) with a header line naming the columns
/// `rep`, `metric`, `period` and `value`. Every row is recorded, or none: each
/// bad row is reported with its line (CSV) or index (JSON) and the reason,
/// a row's format and the domain's rules alike. With `?dry_run=true` nothing
/// is recorded: the answer says what would be, or lists every bad row.
#[utoipa::path(post, path = "/v1/measurements", tag = "measurements",
    params(ImportParams),
    request_body(content(
        (Vec<wire::MeasurementRow> = "application/json"),
        (String = "text/csv", example = "rep,metric,period,value\n0190a5b2-7c3e-7d41-9a2b-3c4d5e6f7a8b,calls_made,2026-W05,42\n")
    )),
    responses((status = 200, description = "Every row was recorded", body = Imported), WriteErrors))]
pub async fn import(
    State(app): State<CommandState>,
    Principal(claims): Principal,
    headers: WriteHeaders,
    axum::extract::Query(params): axum::extract::Query<ImportParams>,
    request: Request,
) -> Result<Response, ApiError> {
    // Refused before the body is read: whoever may import no row at all
    // is told so, not what their rows lack.
    leads_some(&claims, Scope::Measurements)?;
    let dry_run = params.dry_run;
    let kind = content_type(request.headers());
    let is_csv = match kind.as_deref() {
        Some("application/json") => false,
        Some("text/csv" | "application/csv") => true,
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send the rows as JSON (`Content-Type: application/json`) or CSV \
                 (`Content-Type: text/csv`), not {}",
                other.map_or("no content type".to_owned(), |t| format!("{t:?}"))
            )));
        }
    };
    let (method, path) = (
        request.method().as_str().to_owned(),
        request.uri().path().to_owned(),
    );
    let body = read_body(request, app.http().body_limit()).await?;
    let max_rows = app.config().max_import_rows;
    // Rows that cannot be read are reported with the domain's refusals of
    // the others, so that one answer lists every bad row.
    let mut unreadable = Fields::default();
    let rows = if is_csv {
        parse_rows_csv(&body, &mut unreadable, max_rows)?
    } else {
        parse_rows_json(&body, &mut unreadable)?
    };
    if rows.len() > max_rows {
        return Err(too_many(max_rows));
    }
    contradictions(&rows, &mut unreadable);
    if rows.is_empty() {
        unreadable.clone().finish()?;
        return Err(ApiError::Validation(vec![FieldError {
            field: "body".into(),
            reason: "the import has no rows; send at least one measurement".into(),
        }]));
    }
    let ctx = WriteCtx::new(&app, claims, headers, fingerprint(&method, &path, &body));

    // Rows by rep, in file order within each rep.
    let mut by_rep: BTreeMap<RepId, Vec<(usize, &Row)>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        by_rep.entry(row.rep_id).or_default().push((i, row));
    }
    let reps = by_rep.len();

    // A retried keyed import answers with the first outcome.
    if ctx.headers.idempotency_key.is_some() && !dry_run {
        let first = stream(
            "rep",
            by_rep
                .keys()
                .next()
                .map(|r| r.as_uuid())
                .unwrap_or_default(),
        )?;
        if let Some(outcome) = app
            .store()
            .recorded_command(derived_command_id(ctx.command_id, &first))
            .await?
        {
            if outcome.request_hash.is_some_and(|h| h.0 != ctx.fingerprint) {
                return Err(ApiError::IdempotencyMismatch(
                    "this Idempotency-Key was already used for a different import; use a new \
                     key for a new file"
                        .into(),
                ));
            }
            app.metrics().idempotent_replay();
            return Ok(imported(rows.len(), reps, 0, true, false, Vec::new()));
        }
    }

    // What the standards measure, read once for the whole file.
    let catalogue = app
        .measured()
        .covering(
            app.store(),
            by_rep
                .values()
                .flatten()
                .map(|(_, row)| (&row.metric, row.period.kind(), row.value.get())),
        )
        .await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let loaded: Vec<(RepId, Loaded<trellis_domain::RepState>)> =
            stream::iter(by_rep.keys().copied())
                .map(|rep_id| {
                    let app = app.clone();
                    async move {
                        let loaded =
                            load::<RepAggregate>(&app, &stream("rep", rep_id.as_uuid())?).await?;
                        Ok::<_, ApiError>((rep_id, loaded))
                    }
                })
                .buffered(LOAD_CONCURRENCY)
                .try_collect()
                .await?;

        let mut f = unreadable.clone();
        let mut writes = Vec::with_capacity(loaded.len());
        let mut total_events = 0;
        let mut replaced = Vec::new();
        for (rep_id, loaded) in loaded {
            rep_write(
                &ctx.claims,
                rep_id,
                &loaded.state,
                RepAccess::Lead(Scope::Measurements),
            )
            .map_err(|e| match e {
                ApiError::Forbidden(why) => ApiError::Forbidden(format!("rep {rep_id}: {why}")),
                other => other,
            })?;
            let mut state = loaded.state;
            let mut events = Vec::new();
            for (i, row) in &by_rep[&rep_id] {
                let (standard_periods, largest_target) = measures_of(&catalogue, &row.metric);
                let command = RepCommand::MeasurePerformance {
                    measurement: PerformanceMeasured {
                        measurement_id: MeasurementId::from_uuid(
                            ctx.new_id(&format!("measurement:{i}")),
                        ),
                        metric: row.metric.clone(),
                        period: row.period,
                        value: row.value,
                        source: MeasurementSource::CrmImport,
                    },
                    now: ctx.now,
                    standard_periods,
                    largest_target,
                };
                match RepAggregate::decide(&state, command) {
                    Ok(decided) => {
                        for event in decided {
                            if let Some(was) = replaces(&state, &event) {
                                replaced.push((
                                    *i,
                                    wire::Replaced {
                                        row: row.place.clone(),
                                        rep_id: rep_id.as_uuid(),
                                        metric: row.metric.to_string(),
                                        period: row.period.to_string(),
                                        was,
                                        value: row.value.get(),
                                    },
                                ));
                            }
                            state = RepAggregate::evolve(state, &event);
                            events.push(to_new_event(&RepAggregate::into_event(event), ctx.now));
                        }
                    }
                    // A row names its rep by id only: an unknown one is
                    // quoted, so the file's mistake can be found.
                    Err(trellis_domain::Rejection::RepNotFound) => f.push(
                        row.field(Some("rep".into())),
                        format!(
                            "there is no rep {rep_id}: check the id against the people list \
                             (Set up, or GET /v1/reps), or hire the rep first"
                        ),
                    ),
                    Err(rejection) => {
                        f.push(row.field(rejection.concerns()), rejection.to_string())
                    }
                }
            }
            if !events.is_empty() {
                total_events += events.len();
                writes.push(StreamWrite {
                    stream: stream("rep", rep_id.as_uuid())?,
                    expected: ExpectedVersion::Exact(loaded.version),
                    events,
                });
            }
        }
        f.finish()?;
        // In the file's order, not the reps'.
        replaced.sort_by_key(|(i, _)| *i);
        let replaced: Vec<wire::Replaced> = replaced.into_iter().map(|(_, r)| r).collect();
        if dry_run || writes.is_empty() {
            return Ok(imported(
                rows.len(),
                reps,
                total_events,
                false,
                dry_run,
                replaced,
            ));
        }
        let started = std::time::Instant::now();
        let result = app.store().append_many(&ctx.meta(), &writes).await;
        app.metrics().append_latency(started.elapsed());
        match result {
            Ok(outcomes) => {
                let replayed = outcomes.iter().all(|o| o.replayed);
                let events = if replayed { 0 } else { total_events };
                return Ok(imported(
                    rows.len(),
                    reps,
                    events,
                    replayed,
                    false,
                    if replayed { Vec::new() } else { replaced },
                ));
            }
            Err(trellis_eventstore::Error::Conflict { .. }) if attempt < MAX_ATTEMPTS => {
                // A rep's stream moved while we decided: decide again.
                app.metrics().conflict();
                backoff(attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::routes::measurements::{Lines, parse_rows_csv};
    use trellis_http::problem::Fields;

    /// Each data record's line, as an editor numbers them.
    fn lines_of(body: &str) -> Vec<usize> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(body.as_bytes());
        let mut lines = Lines::of(body.as_bytes());
        let mut record = csv::ByteRecord::new();
        let mut found = Vec::new();
        while reader.read_byte_record(&mut record).expect("a record") {
            let at = record.position().expect("a position").byte() as usize;
            found.push(lines.line_at(at));
        }
        found
    }

    #[test]
    fn a_file_that_starts_with_a_byte_order_mark_is_read_by_its_header() {
        let rep = uuid::Uuid::from_u128(7);
        let body = format!("\u{feff}rep,metric,period,value\r\n{rep},calls_made,2026-W05,40\r\n");
        let mut f = Fields::default();
        let rows = parse_rows_csv(body.as_bytes(), &mut f, 10).expect("the header is read");
        assert!(f.finish().is_ok(), "no row refused");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].rep_id.as_uuid(), rep);
        assert_eq!(rows[0].place, "line 2");
    }

    #[test]
    fn a_record_s_line_is_the_editor_s_whatever_ends_the_lines() {
        assert_eq!(lines_of("h,a\nx,1\ny,2\nz,3"), [2, 3, 4]);
        assert_eq!(lines_of("h,a\r\nx,1\r\ny,2\r\nz,3\r\n"), [2, 3, 4]);
        assert_eq!(lines_of("h,a\r\n\r\nx,1\r\n\r\n\r\ny,2"), [3, 6]);
        assert_eq!(lines_of("h,a\n\nx,1\n\n\ny,2\n"), [3, 6]);
        assert_eq!(lines_of("h,a\rx,1\ry,2\r\rz,3"), [2, 3, 5]);
        assert_eq!(lines_of("h,a\nx,\"two\nlines\"\ny,2"), [2, 4]);
    }
}
