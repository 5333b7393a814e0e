//! The wire contract never breaks: field numbers and types stay as published.
//!
//! `tests/wire_snapshot.txt` lists every field and enum value of
//! `trellis.events.v1` as `scope.name = number type`, and every reserved number
//! as `scope reserved a-b`. The test compares the current descriptor
//! ([`FILE_DESCRIPTOR_SET`]) with it:
//!
//! - a field or enum value whose number or type changed fails;
//! - a field removed without `reserved <number>` fails;
//! - a new field using a number the snapshot gave another field fails;
//! - a reservation that disappears fails (it would allow reuse later).
//!
//! Everything else (new messages, fields, values; removals with a reservation)
//! is compatible but still fails until recorded, so the snapshot always equals
//! the contract and every change shows in review: rerun with
//! `TRELLIS_UPDATE_WIRE_SNAPSHOT=1` to rewrite it. The update refuses to record
//! a breaking change.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};
use trellis_contracts::{FILE_DESCRIPTOR_SET, PACKAGE};
use trellis_domain::Event;

/// One message or enum: its fields (or values) by name, and its reserved numbers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Scope {
    /// name → (number, type)
    fields: BTreeMap<String, (i32, String)>,
    /// Inclusive ranges.
    reserved: Vec<(i32, i32)>,
}

impl Scope {
    fn is_reserved(&self, number: i32) -> bool {
        self.reserved
            .iter()
            .any(|(from, to)| (*from..=*to).contains(&number))
    }

    fn name_of(&self, number: i32) -> Option<&str> {
        self.fields
            .iter()
            .find(|(_, (n, _))| *n == number)
            .map(|(name, _)| name.as_str())
    }
}

/// Every message and enum of the package, by full name.
type Snapshot = BTreeMap<String, Scope>;

fn scalar_name(ty: Type) -> String {
    ty.as_str_name()
        .trim_start_matches("TYPE_")
        .to_ascii_lowercase()
}

fn add_message(snapshot: &mut Snapshot, prefix: &str, message: &DescriptorProto) {
    let name = format!("{prefix}.{}", message.name());
    let mut scope = Scope::default();
    for field in &message.field {
        let mut ty = String::new();
        if field.label() == Label::Repeated {
            ty.push_str("repeated ");
        }
        if field.proto3_optional() {
            ty.push_str("optional ");
        } else if let Some(index) = field.oneof_index {
            let oneof = message.oneof_decl[usize::try_from(index).unwrap()].name();
            ty.push_str(&format!("oneof({oneof}) "));
        }
        match field.r#type() {
            Type::Message | Type::Enum | Type::Group => {
                ty.push_str(field.type_name().trim_start_matches('.'));
            }
            scalar => ty.push_str(&scalar_name(scalar)),
        }
        scope
            .fields
            .insert(field.name().to_owned(), (field.number(), ty));
    }
    // Message reserved ranges are end-exclusive.
    scope.reserved = message
        .reserved_range
        .iter()
        .map(|r| (r.start(), r.end() - 1))
        .collect();
    for nested in &message.nested_type {
        add_message(snapshot, &name, nested);
    }
    for nested in &message.enum_type {
        add_enum(snapshot, &name, nested);
    }
    snapshot.insert(name, scope);
}

fn add_enum(snapshot: &mut Snapshot, prefix: &str, e: &EnumDescriptorProto) {
    let name = format!("{prefix}.{}", e.name());
    let mut scope = Scope::default();
    for value in &e.value {
        scope.fields.insert(
            value.name().to_owned(),
            (value.number(), "enum value".to_owned()),
        );
    }
    // Enum reserved ranges are end-inclusive.
    scope.reserved = e
        .reserved_range
        .iter()
        .map(|r| (r.start(), r.end()))
        .collect();
    snapshot.insert(name, scope);
}

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

/// The snapshot of the compiled contract.
fn current() -> Snapshot {
    let mut snapshot = Snapshot::new();
    for file in descriptor_set().file {
        if file.package() != PACKAGE {
            continue;
        }
        for message in &file.message_type {
            add_message(&mut snapshot, PACKAGE, message);
        }
        for e in &file.enum_type {
            add_enum(&mut snapshot, PACKAGE, e);
        }
    }
    snapshot
}

const HEADER: &str = "\
# The wire contract of trellis.events.v1: every field and enum value as
# `scope.name = number type`, every reserved number as `scope reserved from-to`.
# Checked by the `wire_snapshot` test in crates/contracts/tests/wire_snapshot.rs.
# Never edit by hand: after a compatible change, rerun the tests with
# TRELLIS_UPDATE_WIRE_SNAPSHOT=1 to rewrite this file.
";

fn render(snapshot: &Snapshot) -> String {
    let mut out = String::from(HEADER);
    for (scope_name, scope) in snapshot {
        out.push('\n');
        let mut fields: Vec<_> = scope.fields.iter().collect();
        fields.sort_by_key(|(name, (number, _))| (*number, (*name).clone()));
        for (name, (number, ty)) in fields {
            out.push_str(&format!("{scope_name}.{name} = {number} {ty}\n"));
        }
        for (from, to) in &scope.reserved {
            out.push_str(&format!("{scope_name} reserved {from}-{to}\n"));
        }
        if scope.fields.is_empty() && scope.reserved.is_empty() {
            out.push_str(&format!("{scope_name} empty\n"));
        }
    }
    out
}

fn parse(text: &str) -> Result<Snapshot, String> {
    let mut snapshot = Snapshot::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("wire_snapshot.txt line {}: cannot read {line:?}", n + 1);
        if let Some((path, rest)) = line.split_once(" = ") {
            let (scope, name) = path.rsplit_once('.').ok_or_else(bad)?;
            let (number, ty) = rest.split_once(' ').ok_or_else(bad)?;
            let number = number.parse().map_err(|_| bad())?;
            snapshot
                .entry(scope.to_owned())
                .or_default()
                .fields
                .insert(name.to_owned(), (number, ty.to_owned()));
        } else if let Some((scope, range)) = line.split_once(" reserved ") {
            let (from, to) = range.split_once('-').ok_or_else(bad)?;
            let range = (
                from.parse().map_err(|_| bad())?,
                to.parse().map_err(|_| bad())?,
            );
            snapshot
                .entry(scope.to_owned())
                .or_default()
                .reserved
                .push(range);
        } else if let Some(scope) = line.strip_suffix(" empty") {
            snapshot.entry(scope.to_owned()).or_default();
        } else {
            return Err(bad());
        }
    }
    Ok(snapshot)
}

/// The breaking differences from `published` to `now`, one sentence each.
fn breaking_changes(published: &Snapshot, now: &Snapshot) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Scope::default();
    for (scope_name, old) in published {
        let new = now.get(scope_name).unwrap_or(&empty);
        if !now.contains_key(scope_name) && !old.fields.is_empty() {
            problems.push(format!(
                "{scope_name} was removed; published types stay (deprecate it instead)"
            ));
            continue;
        }
        for (name, (number, ty)) in &old.fields {
            match new.fields.get(name) {
                Some((new_number, _)) if new_number != number => problems.push(format!(
                    "{scope_name}.{name} changed number from {number} to {new_number}"
                )),
                Some((_, new_ty)) if new_ty != ty => problems.push(format!(
                    "{scope_name}.{name} changed type from `{ty}` to `{new_ty}`"
                )),
                Some(_) => {}
                None if new.is_reserved(*number) => {}
                None => problems.push(format!(
                    "{scope_name}.{name} = {number} was removed without `reserved {number};`"
                )),
            }
        }
        for (from, to) in &old.reserved {
            if let Some(number) = (*from..=*to).find(|n| !new.is_reserved(*n)) {
                problems.push(format!(
                    "{scope_name} no longer reserves {number}; a reserved number stays reserved"
                ));
            }
        }
        for (name, (number, _)) in &new.fields {
            if old.fields.contains_key(name) {
                continue;
            }
            if let Some(previous) = old.name_of(*number) {
                problems.push(format!(
                    "{scope_name}.{name} reuses number {number}, published as {scope_name}.{previous}"
                ));
            } else if old.is_reserved(*number) {
                problems.push(format!("{scope_name}.{name} uses reserved number {number}"));
            }
        }
    }
    problems
}

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/wire_snapshot.txt")
}

#[test]
fn wire_snapshot() {
    let now = current();
    let rendered = render(&now);
    let path = snapshot_path();
    let update = std::env::var_os("TRELLIS_UPDATE_WIRE_SNAPSHOT").is_some_and(|v| v == "1");
    let published_text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if update => {
            std::fs::write(&path, &rendered).unwrap();
            return;
        }
        Err(e) => panic!(
            "cannot read {}: {e}; create it with TRELLIS_UPDATE_WIRE_SNAPSHOT=1",
            path.display()
        ),
    };
    let published = parse(&published_text).unwrap_or_else(|e| panic!("{e}"));
    let problems = breaking_changes(&published, &now);
    assert!(
        problems.is_empty(),
        "the wire contract would break for subscribers (this cannot be recorded; \
         add a new field or message instead):\n  {}",
        problems.join("\n  ")
    );
    if rendered != published_text {
        if update {
            std::fs::write(&path, &rendered).unwrap();
        } else {
            panic!(
                "the contract changed compatibly but tests/wire_snapshot.txt does not record it yet; \
                 rerun with TRELLIS_UPDATE_WIRE_SNAPSHOT=1 and commit the snapshot"
            );
        }
    }
}

#[test]
fn the_envelope_has_one_payload_field_per_event_type() {
    let now = current();
    let envelope = &now[&format!("{PACKAGE}.Envelope")];
    let payload_fields: Vec<(&String, &String)> = envelope
        .fields
        .iter()
        .filter(|(_, (_, ty))| ty.starts_with("oneof(payload) "))
        .map(|(name, (_, ty))| (name, ty))
        .collect();
    assert_eq!(payload_fields.len(), Event::types().count());
    for (event_type, _) in Event::types() {
        let field = snake_case(event_type);
        let (_, ty) = envelope
            .fields
            .get(&field)
            .unwrap_or_else(|| panic!("Envelope has no payload field {field} for {event_type}"));
        assert_eq!(*ty, format!("oneof(payload) {PACKAGE}.{event_type}"));
    }
}

#[test]
fn the_descriptor_set_is_self_contained_and_documented() {
    let set = descriptor_set();
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    assert!(
        names.contains(&"google/protobuf/timestamp.proto"),
        "{names:?}"
    );
    assert!(
        names.contains(&"trellis/events/v1/envelope.proto"),
        "{names:?}"
    );
    let envelope = set
        .file
        .iter()
        .find(|f| f.name() == "trellis/events/v1/envelope.proto")
        .unwrap();
    let comments = envelope.source_code_info.as_ref().map_or(0, |info| {
        info.location
            .iter()
            .filter(|l| l.leading_comments.is_some())
            .count()
    });
    assert!(
        comments > 10,
        "the envelope's comments are in the descriptor set"
    );
}

fn snake_case(pascal: &str) -> String {
    let mut out = String::new();
    for (i, c) in pascal.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

// --- the checker itself ----------------------------------------------------------

fn snapshot(text: &str) -> Snapshot {
    parse(text).unwrap()
}

const PUBLISHED: &str = "\
p.M.a = 1 string
p.M.b = 2 repeated p.Date
p.M reserved 7-9
p.E.E_UNSPECIFIED = 0 enum value
p.E.E_ONE = 1 enum value
";

#[test]
fn the_snapshot_format_round_trips() {
    let now = current();
    assert_eq!(parse(&render(&now)).unwrap(), now);
    let published = snapshot(PUBLISHED);
    assert_eq!(parse(&render(&published)).unwrap(), published);
}

#[test]
fn additions_are_compatible() {
    let now = snapshot(&format!(
        "{PUBLISHED}p.M.c = 3 optional string\np.E.E_TWO = 2 enum value\np.N empty\n"
    ));
    assert_eq!(
        breaking_changes(&snapshot(PUBLISHED), &now),
        Vec::<String>::new()
    );
}

#[test]
fn removing_a_field_needs_its_number_reserved() {
    let published = snapshot(PUBLISHED);
    let removed = snapshot(&PUBLISHED.replace("p.M.a = 1 string\n", ""));
    assert_eq!(
        breaking_changes(&published, &removed),
        ["p.M.a = 1 was removed without `reserved 1;`"]
    );
    let reserved = snapshot(&PUBLISHED.replace("p.M.a = 1 string\n", "p.M reserved 1-1\n"));
    assert!(breaking_changes(&published, &reserved).is_empty());
}

#[test]
fn changing_a_number_or_type_breaks() {
    let published = snapshot(PUBLISHED);
    let renumbered = snapshot(&PUBLISHED.replace("p.M.a = 1 string", "p.M.a = 3 string"));
    assert_eq!(
        breaking_changes(&published, &renumbered),
        ["p.M.a changed number from 1 to 3"]
    );
    let retyped = snapshot(&PUBLISHED.replace("p.M.a = 1 string", "p.M.a = 1 bytes"));
    assert_eq!(
        breaking_changes(&published, &retyped),
        ["p.M.a changed type from `string` to `bytes`"]
    );
    let value = snapshot(&PUBLISHED.replace("E_ONE = 1", "E_ONE = 2"));
    assert_eq!(
        breaking_changes(&published, &value),
        ["p.E.E_ONE changed number from 1 to 2"]
    );
}

#[test]
fn reusing_a_number_breaks() {
    let published = snapshot(PUBLISHED);
    let reused = snapshot(&PUBLISHED.replace("p.M.a = 1 string", "p.M.z = 1 string"));
    let problems = breaking_changes(&published, &reused);
    assert!(
        problems.contains(&"p.M.z reuses number 1, published as p.M.a".to_owned()),
        "{problems:?}"
    );
    let unreserved = snapshot(&PUBLISHED.replace("p.M reserved 7-9\n", "p.M.x = 8 int32\n"));
    assert_eq!(
        breaking_changes(&published, &unreserved),
        [
            "p.M no longer reserves 7; a reserved number stays reserved",
            "p.M.x uses reserved number 8",
        ]
    );
}

#[test]
fn removing_a_published_message_breaks() {
    let published = snapshot(PUBLISHED);
    let without_enum = snapshot(
        &PUBLISHED
            .lines()
            .filter(|l| !l.starts_with("p.E"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    assert_eq!(
        breaking_changes(&published, &without_enum),
        ["p.E was removed; published types stay (deprecate it instead)"]
    );
}
