//! The deployment files agree with the binary they deploy.
//!
//! No container runtime or registry is reachable where the tests run, so
//! this reads `deploy/` (the Dockerfile, the compose file, the Kubernetes
//! manifests, the NATS configuration) and the commands in
//! `docs/operations.md` and `deploy/README.md`, and checks them against what
//! the built `trellis` binary says of itself in `--help`, for every
//! subcommand: every subcommand and `--flag` used exists; every `TRELLIS_*`
//! variable set is one that the command run reads; every container port,
//! probe and published port agrees with the `--listen` address, which binds
//! every interface; probes ask `/healthz` and `/readyz`, which the
//! application serves; every workload runs as non-root with resources set;
//! no secret is written into a file, and every referenced one is
//! documented; NATS runs as a three-node cluster that the server list of
//! Trellis names. Every problem found is reported at once, each with the
//! file and the place it is in.
//!
//! YAML is read with `yaml-rust2` (aliases resolved; merge keys `<<`
//! resolved here); the Dockerfile, the NATS configuration and Markdown line
//! by line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use yaml_rust2::{Yaml, YamlLoader};

/// The operational routes the application mounts, read at build time: the
/// probes must ask for routes that exist.
const APP_ROUTES: &str = include_str!("../../http/src/app.rs");

/// How long `serve` takes at most to stop its workers after the drain.
const WORKERS_STOP_SECS: u64 = 10;

// ------------------------------------------------------------------ the CLI

/// What one command accepts, from its `--help`.
#[derive(Debug, Default)]
struct Accepts {
    /// Long flags, with whether each takes a value.
    flags: BTreeMap<String, bool>,
    /// The environment variables it reads (`[env: NAME]`).
    env: BTreeSet<String>,
    subcommands: BTreeSet<String>,
}

/// Every command of the binary, by its path (`[]`, `["serve"]`,
/// `["audit", "verify"]`).
#[derive(Debug)]
struct Cli {
    commands: BTreeMap<Vec<String>, Accepts>,
}

impl Cli {
    /// What the built binary accepts, asked once per test binary.
    fn of_binary() -> &'static Cli {
        static CLI: OnceLock<Cli> = OnceLock::new();
        CLI.get_or_init(|| Cli::from_help(help_of_binary))
    }

    /// Walks the command tree from the root's help.
    fn from_help(help: impl Fn(&[String]) -> String) -> Cli {
        let mut commands = BTreeMap::new();
        let mut to_read = vec![Vec::new()];
        while let Some(path) = to_read.pop() {
            let accepts = parse_help(&help(&path));
            for sub in &accepts.subcommands {
                let mut child = path.clone();
                child.push(sub.clone());
                to_read.push(child);
            }
            commands.insert(path, accepts);
        }
        Cli { commands }
    }

    /// Every variable any command reads.
    fn all_env(&self) -> BTreeSet<&str> {
        self.commands
            .values()
            .flat_map(|a| a.env.iter().map(String::as_str))
            .collect()
    }

    /// The command `args` run, and what in them the binary does not accept.
    /// The path is `None` when a subcommand is unknown.
    fn check_args(&self, args: &[String]) -> (Option<Vec<String>>, Vec<String>) {
        let mut path: Vec<String> = Vec::new();
        let mut problems = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let accepts = &self.commands[&path];
            if let Some(flag) = arg.strip_prefix("--") {
                let (name, inline_value) = match flag.split_once('=') {
                    Some((name, _)) => (name, true),
                    None => (flag, false),
                };
                match accepts.flags.get(name) {
                    Some(&takes_value) => {
                        if takes_value && !inline_value {
                            i += 1;
                        }
                    }
                    None => {
                        problems.push(format!(
                            "`--{name}` is not a flag of `{}`",
                            command_name(&path)
                        ));
                        // Its value, most likely: the next word, unless it
                        // is a flag or a subcommand.
                        if !inline_value
                            && args.get(i + 1).is_some_and(|next| {
                                !next.starts_with('-') && !accepts.subcommands.contains(next)
                            })
                        {
                            i += 1;
                        }
                    }
                }
            } else if arg.starts_with('-') {
                if !matches!(arg.as_str(), "-h" | "-V") {
                    problems.push(format!(
                        "`{arg}` is not a flag of `{}`",
                        command_name(&path)
                    ));
                }
            } else if accepts.subcommands.contains(arg) {
                path.push(arg.clone());
            } else if path.is_empty() || !accepts.subcommands.is_empty() {
                problems.push(format!(
                    "`{arg}` is not a subcommand of `{}` (it has: {})",
                    command_name(&path),
                    accepts
                        .subcommands
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                return (None, problems);
            } else {
                problems.push(format!(
                    "`{}` takes no argument `{arg}`",
                    command_name(&path)
                ));
            }
            i += 1;
        }
        (Some(path), problems)
    }
}

fn command_name(path: &[String]) -> String {
    std::iter::once("trellis")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn help_of_binary(path: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(path)
        .arg("--help")
        // The help names variables, never their values from here.
        .env_clear()
        .output()
        .expect("failed to run trellis --help");
    assert!(
        output.status.success(),
        "`{} --help` failed: {}",
        command_name(path),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// Reads clap's help: the `Commands:` list, the option lines (`-h, --help`,
/// `--listen <LISTEN>`) and every `[env: NAME]`.
fn parse_help(text: &str) -> Accepts {
    let mut accepts = Accepts::default();
    let mut in_commands = false;
    for line in text.lines() {
        if line.trim_end().ends_with("Commands:") && !line.starts_with(' ') {
            in_commands = true;
            continue;
        }
        if in_commands {
            if line.starts_with("  ") && !line.trim().is_empty() {
                if let Some(name) = line.split_whitespace().next()
                    && name != "help"
                {
                    accepts.subcommands.insert(name.to_owned());
                }
                continue;
            }
            in_commands = false;
        }
        let trimmed = line.trim_start();
        if line.starts_with(' ') && trimmed.starts_with('-') {
            let mut words = trimmed.split_whitespace().peekable();
            while let Some(word) = words.next() {
                let word = word.trim_end_matches(',');
                if let Some(name) = word.strip_prefix("--") {
                    let takes_value = words
                        .peek()
                        .is_some_and(|next| next.starts_with('<') || next.starts_with("[<"));
                    accepts.flags.insert(name.to_owned(), takes_value);
                    break;
                }
                if !word.starts_with('-') {
                    break;
                }
            }
        }
    }
    for piece in text.split("[env: ").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty() {
            accepts.env.insert(name);
        }
    }
    accepts
}

// ------------------------------------------------------------------ a run

/// One place the binary is run: its arguments and the variables set for it.
#[derive(Debug, Default, Clone)]
struct Run {
    /// Where, for messages: `deploy/compose.yaml: service api-1`.
    at: String,
    args: Vec<String>,
    /// Each variable with its value as written; `None` when it comes from a
    /// secret or another reference.
    env: BTreeMap<String, Option<String>>,
    /// What the image sets for every command (its ENV): read for the listen
    /// address, not checked against the command run.
    defaults: BTreeMap<String, Option<String>>,
}

impl Run {
    /// What the binary does not accept in this run; the command it runs.
    fn check(&self, cli: &Cli, problems: &mut Vec<String>) -> Option<Vec<String>> {
        let (path, found) = cli.check_args(&self.args);
        for problem in found {
            problems.push(format!("{}: {problem}", self.at));
        }
        let reads: BTreeSet<&str> = match path.as_ref().filter(|p| !p.is_empty()) {
            Some(path) => cli.commands[path].env.iter().map(String::as_str).collect(),
            None => cli.all_env(),
        };
        for name in self.env.keys().filter(|n| n.starts_with("TRELLIS_")) {
            if !reads.contains(name.as_str()) {
                let by = match path.as_ref().filter(|p| !p.is_empty()) {
                    Some(path) => format!("`{}` does not read it", command_name(path)),
                    None => "no trellis command reads it".to_owned(),
                };
                problems.push(format!(
                    "{}: environment variable {name} is set, but {by}",
                    self.at
                ));
            }
        }
        path
    }

    /// The value of `--listen` in the arguments, else of TRELLIS_LISTEN.
    fn listen(&self) -> Option<String> {
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            if arg == "--listen" {
                return args.next().cloned();
            }
            if let Some(value) = arg.strip_prefix("--listen=") {
                return Some(value.to_owned());
            }
        }
        self.var("TRELLIS_LISTEN")
    }

    /// A variable's value: the run's own, else the image's.
    fn var(&self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(value) => value.clone(),
            None => self.defaults.get(name).cloned().flatten(),
        }
    }

    /// The listen address's port, checked to bind every interface (a
    /// container listening on loopback answers no probe).
    fn listen_port(&self, problems: &mut Vec<String>) -> Option<u16> {
        let Some(listen) = self.listen() else {
            problems.push(format!(
                "{}: runs `trellis serve` without --listen or TRELLIS_LISTEN: it would listen on \
                 127.0.0.1 only",
                self.at
            ));
            return None;
        };
        let Some((host, port)) = listen.rsplit_once(':') else {
            problems.push(format!("{}: listen address {listen} has no port", self.at));
            return None;
        };
        if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            problems.push(format!(
                "{}: listens on {listen}, loopback only: nothing outside the container reaches it",
                self.at
            ));
        }
        match port.parse() {
            Ok(port) => Some(port),
            Err(_) => {
                problems.push(format!("{}: listen address {listen} has no port", self.at));
                None
            }
        }
    }

    /// TRELLIS_SHUTDOWN_GRACE, or its default.
    fn shutdown_grace(&self) -> u64 {
        self.var("TRELLIS_SHUTDOWN_GRACE")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30)
    }
}

/// Whether a variable holds a secret that must come by reference
/// (`TRELLIS_SIGNING_KEY` does, `TRELLIS_SIGNING_KEY_FILE` is a path).
fn is_secret(name: &str) -> bool {
    ["SECRET", "PASSWORD", "TOKEN"]
        .iter()
        .any(|word| name.contains(word))
        || name.ends_with("_KEY")
}

/// Whether the kustomizations' comments say how to make key `key` of
/// Secret `secret`.
fn documents_secret(docs: &str, secret: &str, key: &str) -> bool {
    docs.contains(&format!("secret generic {secret}"))
        && (docs.contains(&format!("--from-literal={key}="))
            || docs.contains(&format!("--from-file={key}=")))
}

// ------------------------------------------------------------------ files

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_documents(name: &str, text: &str, problems: &mut Vec<String>) -> Vec<Yaml> {
    match YamlLoader::load_from_str(text) {
        Ok(docs) => docs
            .iter()
            .map(resolve_merge_keys)
            .filter(|d| !d.is_null())
            .collect(),
        Err(e) => {
            problems.push(format!("{name}: not valid YAML: {e}"));
            Vec::new()
        }
    }
}

/// Applies YAML merge keys (`<<: *anchor`), which compose files use and
/// yaml-rust2 leaves as plain keys: the mapping's own keys win.
fn resolve_merge_keys(yaml: &Yaml) -> Yaml {
    match yaml {
        Yaml::Hash(hash) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            if let Some(merged) = hash.get(&Yaml::String("<<".into())) {
                let sources = match merged {
                    Yaml::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                for source in sources {
                    if let Yaml::Hash(source) = resolve_merge_keys(&source) {
                        for (k, v) in source {
                            out.insert(k, v);
                        }
                    }
                }
            }
            for (k, v) in hash {
                if k.as_str() != Some("<<") {
                    out.insert(k.clone(), resolve_merge_keys(v));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.iter().map(resolve_merge_keys).collect()),
        other => other.clone(),
    }
}

/// A scalar as text (`8080` and `"8080"` alike).
fn text(yaml: &Yaml) -> Option<String> {
    match yaml {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn texts(yaml: &Yaml) -> Vec<String> {
    match yaml {
        Yaml::Array(items) => items.iter().filter_map(text).collect(),
        Yaml::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn entries(yaml: &Yaml) -> Vec<(String, &Yaml)> {
    yaml.as_hash()
        .map(|hash| {
            hash.iter()
                .filter_map(|(k, v)| text(k).map(|k| (k, v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The string labels of a mapping (`matchLabels`, `labels`).
fn labels(yaml: &Yaml) -> BTreeMap<String, String> {
    entries(yaml)
        .into_iter()
        .filter_map(|(k, v)| text(v).map(|v| (k, v)))
        .collect()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

// ------------------------------------------------------------------ the Dockerfile

/// What the image gives every container made from it.
#[derive(Debug, Default, Clone)]
struct Image {
    /// The default arguments (CMD).
    cmd: Vec<String>,
    /// ENV of the final stage.
    env: BTreeMap<String, Option<String>>,
}

/// One stage: its base image and its instructions (keyword, rest).
#[derive(Debug)]
struct Stage {
    from: String,
    instructions: Vec<(String, String)>,
}

fn dockerfile_stages(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let rest = rest.trim().to_owned();
        if keyword == "FROM" {
            let from = rest
                .split_whitespace()
                .find(|w| !w.starts_with("--"))
                .unwrap_or("")
                .to_owned();
            stages.push(Stage {
                from,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push((keyword, rest));
        }
    }
    stages
}

/// `["a", "b"]` (exec form), or the words of the shell form.
fn exec_form(rest: &str) -> Vec<String> {
    let rest = rest.trim();
    match rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Some(inner) => inner
            .split(',')
            .map(|w| w.trim().trim_matches('"').to_owned())
            .filter(|w| !w.is_empty())
            .collect(),
        None => rest.split_whitespace().map(str::to_owned).collect(),
    }
}

fn check_dockerfile(cli: &Cli, name: &str, source: &str, problems: &mut Vec<String>) -> Image {
    let stages = dockerfile_stages(source);
    let mut image = Image::default();
    if stages.len() < 2 {
        problems.push(format!(
            "{name}: has {} stage(s); a build stage and a runtime stage that gets only the binary \
             are expected",
            stages.len()
        ));
    }
    if !stages.iter().any(|s| {
        s.instructions.iter().any(|(k, rest)| {
            k == "RUN" && rest.contains("cargo build --release -p trellis --locked")
        })
    }) {
        problems.push(format!(
            "{name}: no stage runs `cargo build --release -p trellis --locked`"
        ));
    }
    let Some(last) = stages.last() else {
        return image;
    };
    let at = format!("{name}: final stage ({})", last.from);
    let get = |keyword: &'static str| {
        last.instructions
            .iter()
            .filter(move |(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
    };
    match get("USER").next_back() {
        None => problems.push(format!("{at}: sets no USER, so it runs as root")),
        Some(user) => {
            let uid = user.split(':').next().unwrap_or("").trim();
            if uid == "root" || uid == "0" {
                problems.push(format!("{at}: USER {user} is root"));
            }
        }
    }
    if get("RUN").next().is_some() {
        problems.push(format!(
            "{at}: runs commands; the runtime stage should only copy the binary in"
        ));
    }
    let mut copied = BTreeSet::new();
    for copy in get("COPY").chain(get("ADD")) {
        let words: Vec<&str> = copy.split_whitespace().collect();
        if !words.iter().any(|w| w.starts_with("--from=")) {
            problems.push(format!(
                "{at}: `COPY {copy}` copies from the build context; only what the build stage \
                 made belongs here"
            ));
        }
        if let Some(destination) = words.last() {
            copied.insert((*destination).to_owned());
        }
    }
    let entrypoint = get("ENTRYPOINT")
        .next_back()
        .map(exec_form)
        .unwrap_or_default();
    if entrypoint.len() != 1 || !copied.contains(&entrypoint[0]) {
        problems.push(format!(
            "{at}: ENTRYPOINT {entrypoint:?} is not the copied trellis binary alone"
        ));
    }
    image.cmd = get("CMD").next_back().map(exec_form).unwrap_or_default();
    for env in get("ENV") {
        for pair in env.split_whitespace() {
            if let Some((key, value)) = pair.split_once('=') {
                image
                    .env
                    .insert(key.to_owned(), Some(value.trim_matches('"').to_owned()));
            }
        }
    }
    Run {
        at: format!("{at}: CMD"),
        args: image.cmd.clone(),
        ..Run::default()
    }
    .check(cli, problems);
    // The image's variables apply to whatever command a container runs.
    let run = Run {
        at: format!("{at}: ENV"),
        env: image.env.clone(),
        ..Run::default()
    };
    run.check(cli, problems);
    if let Some(port) = run.listen_port(problems) {
        let exposed: Vec<String> = get("EXPOSE")
            .flat_map(|e| {
                e.split_whitespace()
                    .map(|p| p.trim_end_matches("/tcp").to_owned())
            })
            .collect();
        if exposed != [port.to_string()] {
            problems.push(format!(
                "{at}: EXPOSE {exposed:?} is not the listen port {port}"
            ));
        }
    }
    image
}

// ------------------------------------------------------------------ compose

fn check_compose(
    cli: &Cli,
    name: &str,
    source: &str,
    image: &Image,
    nats_conf: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) {
    let docs = yaml_documents(name, source, problems);
    let Some(doc) = docs.first() else {
        problems.push(format!("{name}: empty"));
        return;
    };
    let services = entries(&doc["services"]);
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    let mut nats_names = BTreeSet::new();
    let mut nats_urls = Vec::new();
    let mut replicas = Vec::new();
    for (service, spec) in &services {
        let at = format!("{name}: service {service}");
        let env: BTreeMap<String, Option<String>> = match &spec["environment"] {
            Yaml::Array(items) => items
                .iter()
                .filter_map(text)
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (kv, None),
                })
                .collect(),
            other => entries(other)
                .into_iter()
                .map(|(k, v)| (k, text(v)))
                .collect(),
        };
        for (key, value) in &env {
            if is_secret(key) && !value.as_deref().is_some_and(|v| v.starts_with("${")) {
                problems.push(format!(
                    "{at}: {key} is written into the file; take it from the environment \
                     (`${{{key}}}`)"
                ));
            }
        }
        for volume in texts(&spec["volumes"]) {
            if let Some(source) = volume.split(':').next()
                && (source.starts_with("./") || source.starts_with("../"))
            {
                let relative = Path::new(name)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(source);
                if !root().join(&relative).exists() {
                    problems.push(format!("{at}: mounts {source}, which does not exist"));
                }
            }
        }
        let image_name = text(&spec["image"]).unwrap_or_default();
        let built_here = text(&spec["build"]["dockerfile"]).is_some();
        if image_name.starts_with("nats:") {
            let command = texts(&spec["command"]);
            let flag = |f: &str| {
                command
                    .iter()
                    .position(|w| w == f)
                    .and_then(|i| command.get(i + 1))
                    .cloned()
            };
            match flag("--name") {
                Some(server) if nats_names.insert(server.clone()) => {}
                _ => problems.push(format!(
                    "{at}: every NATS node needs a server name of its own (--name)"
                )),
            }
            match flag("--config") {
                None => problems.push(format!("{at}: starts NATS without --config")),
                Some(config) => {
                    let mounted = texts(&spec["volumes"]).into_iter().find_map(|v| {
                        let mut parts = v.split(':');
                        let source = parts.next()?.to_owned();
                        (parts.next()? == config).then_some(source)
                    });
                    match mounted.and_then(|source| nats_conf(&source)) {
                        None => problems.push(format!(
                            "{at}: its --config {config} is not a mounted file of deploy/"
                        )),
                        Some(conf) => check_nats_conf(
                            &format!("{at}: {config}"),
                            &conf,
                            &services
                                .iter()
                                .filter(|(_, s)| {
                                    text(&s["image"]).is_some_and(|i| i.starts_with("nats:"))
                                })
                                .map(|(n, _)| n.clone())
                                .collect::<Vec<_>>(),
                            problems,
                        ),
                    }
                }
            }
            continue;
        }
        if !(built_here || image_name.starts_with("trellis")) {
            continue;
        }
        let args = match &spec["command"] {
            Yaml::BadValue | Yaml::Null => image.cmd.clone(),
            command => texts(command),
        };
        for (key, value) in &env {
            let Some(value) = value else { continue };
            if key.starts_with("TRELLIS_") && is_secret(key) && value.contains(":-") {
                problems.push(format!(
                    "{at}: {key} has a default written into the file; require it (`${{{key}:?…}}`)"
                ));
            }
            if key == "TRELLIS_DATABASE_URL"
                && let Some((userinfo, _)) = value.split_once('@')
                && let Some((_, password)) = userinfo
                    .split_once("://")
                    .map_or(userinfo, |(_, rest)| rest)
                    .split_once(':')
                && !password.starts_with("${")
            {
                problems.push(format!(
                    "{at}: the password in TRELLIS_DATABASE_URL is written into the file"
                ));
            }
        }
        let run = Run {
            at: at.clone(),
            args: args.clone(),
            env: env.clone(),
            defaults: image.env.clone(),
        };
        let path = run.check(cli, problems);
        if path.as_deref() == Some(&["serve".to_owned()][..]) {
            if let Some(port) = run.listen_port(problems) {
                for published in texts(&spec["ports"]) {
                    let container = published.rsplit(':').next().unwrap_or("");
                    let container = container.trim_end_matches("/tcp");
                    if container != port.to_string() {
                        problems.push(format!(
                            "{at}: publishes {published}, but trellis listens on {port}"
                        ));
                    }
                }
            }
            if let Some(grace) = text(&spec["stop_grace_period"]) {
                let secs = parse_duration(&grace);
                if secs < Some(run.shutdown_grace() + WORKERS_STOP_SECS) {
                    problems.push(format!(
                        "{at}: stop_grace_period {grace} is shorter than TRELLIS_SHUTDOWN_GRACE \
                         ({}s) plus the workers' stop ({WORKERS_STOP_SECS}s)",
                        run.shutdown_grace()
                    ));
                }
            }
            if let Some(urls) = run.var("TRELLIS_NATS_URL") {
                nats_urls.push((at.clone(), urls));
            }
            if let Some(n) = run.var("TRELLIS_NATS_REPLICAS") {
                replicas.push((at.clone(), n));
            }
        }
        commands.push((service.clone(), args));
    }
    let count = |wanted: &[&str]| {
        commands
            .iter()
            .filter(|(_, args)| args.iter().map(String::as_str).eq(wanted.iter().copied()))
            .count()
    };
    for (what, wanted, least) in [
        ("a one-shot migrate", &["migrate"][..], 1),
        ("API processes", &["serve", "--roles", "api"][..], 2),
        (
            "worker processes",
            &["serve", "--roles", "projector,relay,alerts,webhooks"][..],
            2,
        ),
    ] {
        if count(wanted) < least {
            problems.push(format!(
                "{name}: expected {least} or more services running `trellis {}` ({what})",
                wanted.join(" ")
            ));
        }
    }
    if nats_names.len() != 3 {
        problems.push(format!(
            "{name}: expected three NATS nodes, found {}",
            nats_names.len()
        ));
    }
    let nats_services: BTreeSet<String> = services
        .iter()
        .filter(|(_, s)| text(&s["image"]).is_some_and(|i| i.starts_with("nats:")))
        .map(|(n, _)| n.clone())
        .collect();
    check_nats_urls(&nats_urls, &nats_services, &replicas, problems);
}

/// `45s`, `1m30s`, `2m` in seconds.
fn parse_duration(text: &str) -> Option<u64> {
    let mut total = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
        } else {
            let n: u64 = number.parse().ok()?;
            number.clear();
            total += match c {
                's' => n,
                'm' => n * 60,
                'h' => n * 3600,
                _ => return None,
            };
        }
    }
    if !number.is_empty() {
        return None;
    }
    Some(total)
}

// ------------------------------------------------------------------ NATS

/// A NATS node's configuration: client port 4222, JetStream on, a cluster
/// whose routes name exactly `nodes` on the cluster port.
fn check_nats_conf(at: &str, conf: &str, nodes: &[String], problems: &mut Vec<String>) {
    let lines: Vec<&str> = conf
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .collect();
    if !lines.contains(&"port: 4222") {
        problems.push(format!("{at}: clients' port is not 4222"));
    }
    if !lines.iter().any(|l| l.starts_with("jetstream {")) {
        problems.push(format!("{at}: JetStream is not enabled"));
    }
    if !lines.iter().any(|l| l.starts_with("cluster {")) {
        problems.push(format!("{at}: no cluster block"));
    }
    let routes: BTreeSet<String> = conf
        .split("nats-route://")
        .skip(1)
        .filter_map(|r| {
            r.split(|c: char| c.is_whitespace() || c == ',' || c == ']')
                .next()
        })
        .map(str::to_owned)
        .collect();
    let wanted: BTreeSet<String> = nodes.iter().map(|n| format!("{n}:6222")).collect();
    if routes != wanted {
        problems.push(format!(
            "{at}: routes {routes:?} are not the cluster's nodes {wanted:?}"
        ));
    }
}

/// Trellis's server list names every NATS node on the client port, and
/// asks for no more stream copies than there are nodes.
fn check_nats_urls(
    urls: &[(String, String)],
    nodes: &BTreeSet<String>,
    replicas: &[(String, String)],
    problems: &mut Vec<String>,
) {
    for (at, list) in urls {
        let hosts: BTreeSet<String> = list
            .split(',')
            .filter_map(|url| url.trim().strip_prefix("nats://"))
            .filter_map(|hostport| hostport.strip_suffix(":4222"))
            .map(str::to_owned)
            .collect();
        if &hosts != nodes {
            problems.push(format!(
                "{at}: TRELLIS_NATS_URL {list} does not name each NATS node {nodes:?} on port 4222"
            ));
        }
    }
    for (at, n) in replicas {
        if !matches!(n.parse::<usize>(), Ok(n) if (1..=nodes.len()).contains(&n)) {
            problems.push(format!(
                "{at}: TRELLIS_NATS_REPLICAS {n} is not between 1 and the {} NATS nodes",
                nodes.len()
            ));
        }
    }
}

// ------------------------------------------------------------------ Kubernetes

/// The objects and generated config maps of a kustomization (its own and
/// its bases').
#[derive(Debug, Default)]
struct Kustomized {
    objects: Vec<(String, Yaml)>,
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// The kustomization files' text, where secrets are documented.
    docs: String,
}

fn kustomize(dir: &str, problems: &mut Vec<String>) -> Kustomized {
    let mut out = Kustomized::default();
    let file = format!("{dir}/kustomization.yaml");
    if !root().join(&file).exists() {
        problems.push(format!("{dir}: has no kustomization.yaml"));
        return out;
    }
    let content = read(&file);
    out.docs.push_str(&content);
    let docs = yaml_documents(&file, &content, problems);
    let Some(k) = docs.first() else {
        return out;
    };
    let mut listed = BTreeSet::new();
    for resource in texts(&k["resources"]) {
        let path = normalize(&format!("{dir}/{resource}"));
        if root().join(&path).join("kustomization.yaml").exists() {
            let base = kustomize(&path, problems);
            out.objects.extend(base.objects);
            for (name, data) in base.config_maps {
                out.config_maps.entry(name).or_default().extend(data);
            }
            out.docs.push_str(&base.docs);
        } else if root().join(&path).is_file() {
            listed.insert(resource.clone());
            for doc in yaml_documents(&path, &read(&path), problems) {
                out.objects.push((path.clone(), doc));
            }
        } else {
            problems.push(format!("{file}: resource {resource} does not exist"));
        }
    }
    for generator in k["configMapGenerator"].as_vec().into_iter().flatten() {
        let name = text(&generator["name"]).unwrap_or_default();
        let data = out.config_maps.entry(name.clone()).or_default();
        for literal in texts(&generator["literals"]) {
            match literal.split_once('=') {
                Some((key, value)) => {
                    data.insert(key.to_owned(), value.to_owned());
                }
                None => problems.push(format!(
                    "{file}: config map {name}: `{literal}` is not KEY=VALUE"
                )),
            }
        }
        for source in texts(&generator["files"]) {
            let (key, path) = source.split_once('=').unwrap_or((&source, &source));
            let path = format!("{dir}/{path}");
            match std::fs::read_to_string(root().join(&path)) {
                Ok(content) => {
                    listed.insert(path.clone());
                    let key = Path::new(key)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    data.insert(key, content);
                }
                Err(_) => {
                    problems.push(format!("{file}: config map {name}: {path} does not exist"))
                }
            }
        }
        for key in data
            .keys()
            .filter(|k| is_secret(k) || k.ends_with("DATABASE_URL"))
        {
            problems.push(format!(
                "{file}: config map {name} holds {key}: a secret belongs in a Secret, referenced"
            ));
        }
    }
    // Every manifest here is in the build.
    if let Ok(read_dir) = std::fs::read_dir(root().join(dir)) {
        for entry in read_dir.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.ends_with(".yaml")
                && file_name != "kustomization.yaml"
                && !listed.contains(&file_name)
            {
                problems.push(format!(
                    "{dir}/{file_name}: not listed in {file}, so never applied"
                ));
            }
        }
    }
    out
}

/// `deploy/k8s/example/../base` as `deploy/k8s/base`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// A workload's pod template: `spec.template` of a Deployment, Job or
/// StatefulSet.
fn pod_template(object: &Yaml) -> Option<&Yaml> {
    let kind = object["kind"].as_str()?;
    matches!(kind, "Deployment" | "Job" | "StatefulSet").then(|| &object["spec"]["template"])
}

fn object_name(file: &str, object: &Yaml) -> String {
    format!(
        "{file}: {} {}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn check_kubernetes(cli: &Cli, k: &Kustomized, image: &Image, problems: &mut Vec<String>) {
    let mut migrate_jobs = 0;
    let mut serve_deployments = Vec::new();
    let pdbs: Vec<BTreeMap<String, String>> = k
        .objects
        .iter()
        .filter(|(_, o)| o["kind"].as_str() == Some("PodDisruptionBudget"))
        .map(|(_, o)| labels(&o["spec"]["selector"]["matchLabels"]))
        .collect();
    let policies: Vec<(&Yaml, BTreeMap<String, String>)> = k
        .objects
        .iter()
        .filter(|(_, o)| o["kind"].as_str() == Some("NetworkPolicy"))
        .map(|(_, o)| (o, labels(&o["spec"]["podSelector"]["matchLabels"])))
        .collect();
    let mut pod_ports: Vec<(BTreeMap<String, String>, BTreeMap<String, u16>)> = Vec::new();
    for (file, object) in &k.objects {
        let Some(template) = pod_template(object) else {
            continue;
        };
        let kind = object["kind"].as_str().unwrap_or("");
        let at = object_name(file, object);
        let pod = &template["spec"];
        let pod_labels = labels(&template["metadata"]["labels"]);
        let selector = labels(&object["spec"]["selector"]["matchLabels"]);
        if kind != "Job" && !selects(&selector, &pod_labels) {
            problems.push(format!("{at}: its selector does not select its own pods"));
        }
        if kind != "Job" {
            if !pdbs.iter().any(|s| selects(s, &pod_labels)) {
                problems.push(format!("{at}: no PodDisruptionBudget selects its pods"));
            }
            if !policies.iter().any(|(_, s)| selects(s, &pod_labels)) {
                problems.push(format!("{at}: no NetworkPolicy selects its pods"));
            }
        }
        let pod_security = &pod["securityContext"];
        let mut ports_by_name = BTreeMap::new();
        for container in pod["containers"].as_vec().into_iter().flatten() {
            let cname = container["name"].as_str().unwrap_or("?");
            let cat = format!("{at}: container {cname}");
            let security = &container["securityContext"];
            let non_root = security["runAsNonRoot"]
                .as_bool()
                .or(pod_security["runAsNonRoot"].as_bool());
            if non_root != Some(true) {
                problems.push(format!("{cat}: runAsNonRoot is not true"));
            }
            let uid = security["runAsUser"]
                .as_i64()
                .or(pod_security["runAsUser"].as_i64());
            if uid == Some(0) {
                problems.push(format!("{cat}: runAsUser is 0 (root)"));
            }
            if security["allowPrivilegeEscalation"].as_bool() != Some(false) {
                problems.push(format!("{cat}: allowPrivilegeEscalation is not false"));
            }
            for (part, resource) in [
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "cpu"),
                ("limits", "memory"),
            ] {
                if text(&container["resources"][part][resource]).is_none() {
                    problems.push(format!("{cat}: no resources.{part}.{resource}"));
                }
            }
            let mut ports = BTreeMap::new();
            for port in container["ports"].as_vec().into_iter().flatten() {
                if let (Some(name), Some(number)) =
                    (port["name"].as_str(), port["containerPort"].as_i64())
                {
                    ports.insert(name.to_owned(), number as u16);
                }
            }
            ports_by_name.extend(ports.clone());
            if kind != "Job" {
                for probe in ["readinessProbe", "livenessProbe"] {
                    if container[probe]["httpGet"].is_badvalue() {
                        problems.push(format!("{cat}: no {probe} (httpGet)"));
                    }
                }
            }
            if text(&container["image"]).as_deref() != Some("trellis") {
                continue;
            }
            // A container of Trellis: its arguments and environment.
            let mut env = BTreeMap::new();
            for from in container["envFrom"].as_vec().into_iter().flatten() {
                if let Some(map) = from["configMapRef"]["name"].as_str() {
                    match k.config_maps.get(map) {
                        Some(data) => {
                            env.extend(data.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
                        }
                        None => problems.push(format!(
                            "{cat}: envFrom config map {map}, which no generator makes"
                        )),
                    }
                }
            }
            for var in container["env"].as_vec().into_iter().flatten() {
                let Some(name) = var["name"].as_str() else {
                    continue;
                };
                let secret_ref = &var["valueFrom"]["secretKeyRef"];
                if (is_secret(name) || name.ends_with("DATABASE_URL")) && secret_ref.is_badvalue() {
                    problems.push(format!(
                        "{cat}: {name} is not taken from a Secret (valueFrom.secretKeyRef)"
                    ));
                }
                if let (Some(secret), Some(key)) =
                    (secret_ref["name"].as_str(), secret_ref["key"].as_str())
                    && !documents_secret(&k.docs, secret, key)
                {
                    problems.push(format!(
                        "{cat}: Secret {secret} key {key} is not documented in the \
                         kustomization (how to make it)"
                    ));
                }
                let value = text(&var["value"]);
                // A file the binary reads lies in a volume of the container.
                if name.ends_with("_FILE")
                    && let Some(file) = &value
                    && !container["volumeMounts"]
                        .as_vec()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m["mountPath"].as_str())
                        .any(|mount| file.starts_with(&format!("{mount}/")))
                {
                    problems.push(format!("{cat}: {name} {file} is in no mounted volume"));
                }
                env.insert(name.to_owned(), value);
            }
            for volume in pod["volumes"].as_vec().into_iter().flatten() {
                let Some(secret) = volume["secret"]["secretName"].as_str() else {
                    continue;
                };
                let keys: Vec<&str> = volume["secret"]["items"]
                    .as_vec()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item["key"].as_str())
                    .collect();
                if keys.is_empty() {
                    problems.push(format!(
                        "{cat}: Secret volume {secret} names no items: which keys it needs is \
                         not said"
                    ));
                }
                for key in keys {
                    if !documents_secret(&k.docs, secret, key) {
                        problems.push(format!(
                            "{cat}: Secret {secret} key {key} is not documented in the \
                             kustomization (how to make it)"
                        ));
                    }
                }
            }
            let args = match &container["args"] {
                Yaml::BadValue => image.cmd.clone(),
                args => texts(args),
            };
            let run = Run {
                at: cat.clone(),
                args,
                env,
                defaults: image.env.clone(),
            };
            if !container["command"].is_badvalue() {
                problems.push(format!(
                    "{cat}: overrides the image's ENTRYPOINT; give only args"
                ));
            }
            let path = run.check(cli, problems);
            if run.args == ["migrate"] && kind == "Job" {
                migrate_jobs += 1;
            }
            if path.as_deref() != Some(&["serve".to_owned()][..]) {
                continue;
            }
            if kind == "Deployment" {
                serve_deployments.push(at.clone());
            }
            let Some(listen) = run.listen_port(problems) else {
                continue;
            };
            if !ports.values().any(|p| *p == listen) {
                problems.push(format!(
                    "{cat}: no containerPort is the listen port {listen}"
                ));
            }
            for (probe, paths) in [
                ("readinessProbe", &["/readyz"][..]),
                ("livenessProbe", &["/healthz"][..]),
                ("startupProbe", &["/healthz", "/readyz"][..]),
            ] {
                let get = &container[probe]["httpGet"];
                if get.is_badvalue() {
                    continue;
                }
                let path = get["path"].as_str().unwrap_or("");
                if !paths.contains(&path) {
                    problems.push(format!(
                        "{cat}: {probe} asks {path}, expected {}",
                        paths.join(" or ")
                    ));
                }
                let port = match &get["port"] {
                    Yaml::String(name) => ports.get(name).copied(),
                    other => other.as_i64().map(|p| p as u16),
                };
                if port != Some(listen) {
                    problems.push(format!(
                        "{cat}: {probe} asks port {}, trellis listens on {listen}",
                        text(&get["port"]).unwrap_or_default()
                    ));
                }
            }
            if let Some(scrape) = text(&template["metadata"]["annotations"]["prometheus.io/port"])
                && scrape != listen.to_string()
            {
                problems.push(format!(
                    "{at}: prometheus.io/port {scrape} is not the listen port {listen}"
                ));
            }
            let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_i64()
                .unwrap_or(0) as u64;
            let wanted = pre_stop + run.shutdown_grace() + WORKERS_STOP_SECS;
            let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(30) as u64;
            if grace < wanted {
                problems.push(format!(
                    "{at}: terminationGracePeriodSeconds {grace} is shorter than preStop \
                     ({pre_stop}s) + TRELLIS_SHUTDOWN_GRACE ({}s) + the workers' stop \
                     ({WORKERS_STOP_SECS}s)",
                    run.shutdown_grace()
                ));
            }
        }
        pod_ports.push((pod_labels, ports_by_name));
    }
    // Services and policies name ports that the selected pods have.
    for (file, object) in &k.objects {
        let kind = object["kind"].as_str().unwrap_or("");
        let at = object_name(file, object);
        let (selector, ports): (BTreeMap<String, String>, Vec<&Yaml>) = match kind {
            "Service" => (
                labels(&object["spec"]["selector"]),
                object["spec"]["ports"]
                    .as_vec()
                    .into_iter()
                    .flatten()
                    .map(|p| &p["targetPort"])
                    .collect(),
            ),
            "NetworkPolicy" => (
                labels(&object["spec"]["podSelector"]["matchLabels"]),
                object["spec"]["ingress"]
                    .as_vec()
                    .into_iter()
                    .flatten()
                    .flat_map(|rule| rule["ports"].as_vec().into_iter().flatten())
                    .map(|p| &p["port"])
                    .collect(),
            ),
            _ => continue,
        };
        let targets: Vec<&BTreeMap<String, u16>> = pod_ports
            .iter()
            .filter(|(labels, _)| selects(&selector, labels))
            .map(|(_, ports)| ports)
            .collect();
        if targets.is_empty() {
            problems.push(format!("{at}: selects no pods of these manifests"));
            continue;
        }
        for port in ports {
            let found = targets.iter().all(|pod| match port {
                Yaml::String(name) => pod.contains_key(name),
                other => other
                    .as_i64()
                    .is_some_and(|n| pod.values().any(|p| i64::from(*p) == n)),
            });
            if !found {
                problems.push(format!(
                    "{at}: port {:?} is not a port of the pods it selects",
                    text(port)
                ));
            }
        }
    }
    if migrate_jobs == 0 {
        problems.push("deploy/k8s: no Job runs `trellis migrate`".to_owned());
    }
    if serve_deployments.len() < 2 {
        problems.push(format!(
            "deploy/k8s: expected a Deployment per role (API and worker), found {serve_deployments:?}"
        ));
    }
}

/// The NATS StatefulSet forms a three-node cluster under its headless
/// Service, and Trellis's server list names its pods.
fn check_kubernetes_nats(k: &Kustomized, problems: &mut Vec<String>) {
    let Some((file, set)) = k.objects.iter().find(|(_, o)| {
        o["kind"].as_str() == Some("StatefulSet") && o["metadata"]["name"].as_str() == Some("nats")
    }) else {
        problems.push("deploy/k8s: no StatefulSet nats".to_owned());
        return;
    };
    let at = object_name(file, set);
    let replicas = set["spec"]["replicas"].as_i64().unwrap_or(1);
    let service = set["spec"]["serviceName"].as_str().unwrap_or("");
    if replicas != 3 {
        problems.push(format!("{at}: {replicas} replicas, expected 3"));
    }
    let headless = k.objects.iter().any(|(_, o)| {
        o["kind"].as_str() == Some("Service")
            && o["metadata"]["name"].as_str() == Some(service)
            && o["spec"]["clusterIP"].as_str() == Some("None")
    });
    if !headless {
        problems.push(format!(
            "{at}: no headless Service {service} names its pods"
        ));
    }
    let nodes: Vec<String> = (0..replicas)
        .map(|i| format!("nats-{i}.{service}"))
        .collect();
    match k
        .config_maps
        .get("nats-config")
        .and_then(|m| m.get("nats.conf"))
    {
        Some(conf) => check_nats_conf(&format!("{at}: nats.conf"), conf, &nodes, problems),
        None => problems.push(format!("{at}: no config map nats-config with nats.conf")),
    }
    let config = k.config_maps.get("trellis-config");
    let urls: Vec<(String, String)> = config
        .and_then(|c| c.get("TRELLIS_NATS_URL"))
        .map(|u| vec![("config map trellis-config".to_owned(), u.clone())])
        .unwrap_or_default();
    if urls.is_empty() {
        problems.push("deploy/k8s: config map trellis-config sets no TRELLIS_NATS_URL".to_owned());
    }
    let replicas_wanted: Vec<(String, String)> = config
        .and_then(|c| c.get("TRELLIS_NATS_REPLICAS"))
        .map(|n| vec![("config map trellis-config".to_owned(), n.clone())])
        .unwrap_or_default();
    check_nats_urls(
        &urls,
        &nodes.into_iter().collect(),
        &replicas_wanted,
        problems,
    );
}

// ------------------------------------------------------------------ Markdown

/// Every `trellis …` command line in the fenced code blocks of a Markdown
/// file, and every `TRELLIS_…=` it sets there.
fn markdown_runs(name: &str, text: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut in_code = false;
    let mut joined = String::new();
    let mut line_number = 0;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        if joined.is_empty() {
            line_number = n + 1;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(part) => {
                joined.push_str(part);
                joined.push(' ');
                continue;
            }
            None => joined.push_str(line),
        }
        let words = shell_words(&std::mem::take(&mut joined));
        let at = format!("{name}:{line_number}");
        let mut env = BTreeMap::new();
        for word in &words {
            if let Some((key, value)) = word.split_once('=')
                && key.starts_with("TRELLIS_")
                && key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                env.insert(key.to_owned(), Some(value.to_owned()));
            }
        }
        let mut found = false;
        for (i, word) in words.iter().enumerate() {
            let program = word.rsplit('/').next().unwrap_or(word);
            // A command's first word: at the start, after an operator, after
            // `--` (`kubectl exec … -- trellis …`) or after `VAR=value`s;
            // not an argument such as `-p trellis` or `-n trellis`.
            let starts_command = match i.checked_sub(1).map(|p| words[p].as_str()) {
                None => true,
                Some(before) => {
                    matches!(before, "--" | "|" | "&&" | "||" | ";" | "$(")
                        || before.split_once('=').is_some_and(|(k, _)| {
                            !k.is_empty()
                                && k.chars().all(|c| {
                                    c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
                                })
                        })
                }
            };
            if program == "trellis" && starts_command {
                let args: Vec<String> = words[i + 1..]
                    .iter()
                    .take_while(|w| !matches!(w.as_str(), "|" | "&&" | "||" | ";" | ">" | "2>"))
                    .cloned()
                    .collect();
                runs.push(Run {
                    at: at.clone(),
                    args,
                    env: env.clone(),
                    ..Run::default()
                });
                found = true;
                break;
            }
        }
        // `docker compose … run [--rm] SERVICE ARGS…`: the image's
        // entrypoint is the binary.
        if !found
            && words.iter().any(|w| w == "compose")
            && let Some(run) = words.iter().position(|w| w == "run")
        {
            let mut rest = words[run + 1..].iter().skip_while(|w| w.starts_with('-'));
            if rest.next().is_some() {
                runs.push(Run {
                    at: at.clone(),
                    args: rest
                        .take_while(|w| !matches!(w.as_str(), "|" | "&&" | "||" | ";" | ">"))
                        .cloned()
                        .collect(),
                    env: env.clone(),
                    ..Run::default()
                });
                found = true;
            }
        }
        if !found && !env.is_empty() {
            runs.push(Run {
                at,
                env,
                ..Run::default()
            });
        }
    }
    runs
}

/// Words as a shell splits them (quotes kept together, `#` comments
/// dropped); `$(`/`)` and operators stand alone.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if word.is_empty() => break,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, '$') if chars.peek() == Some(&'(') => {
                chars.next();
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                words.push("$(".into());
            }
            (None, ')' | ';' | '|') => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                words.push(c.to_string());
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

// ------------------------------------------------------------------ the tests

fn report(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s) in the deployment files:\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

fn the_image(cli: &Cli, problems: &mut Vec<String>) -> Image {
    check_dockerfile(
        cli,
        "deploy/Dockerfile",
        &read("deploy/Dockerfile"),
        problems,
    )
}

#[test]
fn the_dockerfile_builds_the_binary_alone_and_runs_it_as_non_root() {
    let cli = Cli::of_binary();
    let mut problems = Vec::new();
    the_image(cli, &mut problems);
    let ignore = read(".dockerignore");
    for needed in ["target/", "trellis-data/", ".git", "tests/artifacts/"] {
        if !ignore.lines().any(|l| l.trim() == needed) {
            problems.push(format!(".dockerignore: does not leave out {needed}"));
        }
    }
    report(&problems);
}

#[test]
fn the_compose_stack_uses_only_flags_variables_and_ports_the_binary_has() {
    let cli = Cli::of_binary();
    let mut problems = Vec::new();
    let image = the_image(cli, &mut Vec::new());
    let conf = |source: &str| {
        let path = normalize(&format!("deploy/{source}"));
        path.ends_with(".conf")
            .then(|| std::fs::read_to_string(root().join(&path)).ok())
            .flatten()
    };
    check_compose(
        cli,
        "deploy/compose.yaml",
        &read("deploy/compose.yaml"),
        &image,
        &conf,
        &mut problems,
    );
    report(&problems);
}

#[test]
fn the_kubernetes_manifests_probe_limit_and_secure_every_role() {
    let cli = Cli::of_binary();
    let mut problems = Vec::new();
    for route in ["/healthz", "/readyz", "/metrics"] {
        if !APP_ROUTES.contains(&format!(".route(\"{route}\"")) {
            problems.push(format!(
                "crates/http/src/app.rs: no longer mounts {route}, which the probes and scrapers ask"
            ));
        }
    }
    let image = the_image(cli, &mut Vec::new());
    let example = kustomize("deploy/k8s/example", &mut problems);
    check_kubernetes(cli, &example, &image, &mut problems);
    check_kubernetes_nats(&example, &mut problems);
    // The overlay's image replaces the base's by name.
    let overlay = read("deploy/k8s/example/kustomization.yaml");
    if !overlay.contains("- name: trellis\n") {
        problems
            .push("deploy/k8s/example/kustomization.yaml: sets no image for `trellis`".to_owned());
    }
    report(&problems);
}

#[test]
fn the_operations_guide_and_deploy_readme_run_only_what_exists() {
    let cli = Cli::of_binary();
    let mut problems = Vec::new();
    for file in ["docs/operations.md", "deploy/README.md"] {
        let runs = markdown_runs(file, &read(file));
        if runs.is_empty() {
            problems.push(format!(
                "{file}: no trellis command found in its code blocks"
            ));
        }
        for run in runs {
            run.check(cli, &mut problems);
        }
    }
    report(&problems);
}

// ------------------------------------------------------------------ the checks can fail

#[test]
fn an_unknown_subcommand_flag_or_variable_a_wrong_port_and_a_written_secret_are_reported() {
    let cli = Cli::of_binary();
    let image = Image {
        cmd: vec!["serve".into()],
        env: BTreeMap::from([("TRELLIS_LISTEN".into(), Some("0.0.0.0:8080".into()))]),
    };
    let compose = r#"
services:
  api:
    image: trellis:local
    command: ["serve", "--no-such-flag", "x", "--listen", "0.0.0.0:9090"]
    environment:
      TRELLIS_NO_SUCH_VARIABLE: "1"
      TRELLIS_JWT_SECRET: a-secret-written-into-the-file-0123456789
      TRELLIS_DATABASE_URL: postgres://app:hunter2@db/trellis
    ports:
      - "127.0.0.1:8080:8080"
  other:
    image: trellis:local
    command: ["frobnicate", "--now"]
  local:
    image: trellis:local
    command: ["serve"]
    environment:
      TRELLIS_LISTEN: 127.0.0.1:8080
"#;
    let mut problems = Vec::new();
    check_compose(
        cli,
        "sample.yaml",
        compose,
        &image,
        &|_: &str| None,
        &mut problems,
    );
    let all = problems.join("\n");
    for expected in [
        "`--no-such-flag` is not a flag of `trellis serve`",
        "TRELLIS_NO_SUCH_VARIABLE is set, but `trellis serve` does not read it",
        "TRELLIS_JWT_SECRET is written into the file",
        "the password in TRELLIS_DATABASE_URL is written into the file",
        "publishes 127.0.0.1:8080:8080, but trellis listens on 9090",
        "`frobnicate` is not a subcommand of `trellis`",
        "listens on 127.0.0.1:8080, loopback only",
        "expected three NATS nodes",
        "expected 1 or more services running `trellis migrate`",
    ] {
        assert!(
            all.contains(expected),
            "not reported: {expected}\nreported:\n{all}"
        );
    }
    // A flag the binary has is not reported.
    assert!(!all.contains("`--listen`"), "{all}");
}

#[test]
fn a_probe_on_another_path_or_port_root_and_missing_resources_are_reported() {
    let cli = Cli::of_binary();
    let deployment = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: trellis-api
spec:
  selector:
    matchLabels: {app: trellis}
  template:
    metadata:
      labels: {app: trellis}
    spec:
      securityContext:
        runAsUser: 0
      containers:
        - name: trellis
          image: trellis
          args: ["serve", "--listen", "0.0.0.0:8080"]
          ports:
            - name: http
              containerPort: 9000
          env:
            - name: TRELLIS_JWT_SECRET
              value: a-secret-written-into-the-file-0123456789
            - name: TRELLIS_SIGNING_KEY_FILE
              value: /keys/signing-key
          readinessProbe:
            httpGet: {path: /ready, port: http}
      volumes:
        - name: keys
          secret:
            secretName: undocumented
            items:
              - {key: k, path: k}
"#;
    let mut problems = Vec::new();
    let objects = yaml_documents("sample.yaml", deployment, &mut problems)
        .into_iter()
        .map(|o| ("sample.yaml".to_owned(), o))
        .collect();
    let k = Kustomized {
        objects,
        ..Kustomized::default()
    };
    check_kubernetes(cli, &k, &Image::default(), &mut problems);
    let all = problems.join("\n");
    for expected in [
        "readinessProbe asks /ready, expected /readyz",
        "readinessProbe asks port http, trellis listens on 8080",
        "no livenessProbe (httpGet)",
        "no containerPort is the listen port 8080",
        "runAsNonRoot is not true",
        "runAsUser is 0 (root)",
        "no resources.limits.memory",
        "TRELLIS_JWT_SECRET is not taken from a Secret",
        "no PodDisruptionBudget selects its pods",
        "no NetworkPolicy selects its pods",
        "no Job runs `trellis migrate`",
        "TRELLIS_SIGNING_KEY_FILE /keys/signing-key is in no mounted volume",
        "Secret undocumented key k is not documented",
    ] {
        assert!(
            all.contains(expected),
            "not reported: {expected}\nreported:\n{all}"
        );
    }
}

#[test]
fn a_single_stage_root_image_and_an_unknown_command_in_the_docs_are_reported() {
    let cli = Cli::of_binary();
    let dockerfile = "FROM debian:bookworm-slim\nCOPY trellis /trellis\nUSER root\n\
                      ENV TRELLIS_LISTEN=0.0.0.0:8080\nEXPOSE 9090\nENTRYPOINT [\"/trellis\"]\n";
    let mut problems = Vec::new();
    check_dockerfile(cli, "Sample", dockerfile, &mut problems);
    let markdown = "text\n\n```sh\nTRELLIS_NO_SUCH=1 trellis serve --frob \\\n  --listen 0.0.0.0:1\n\
                    trellis frobnicate --now\ncargo run -p trellis -- demo\nkubectl -n trellis get pods\n```\n";
    for run in markdown_runs("sample.md", markdown) {
        run.check(cli, &mut problems);
    }
    let all = problems.join("\n");
    for expected in [
        "has 1 stage(s)",
        "USER root is root",
        "copies from the build context",
        "EXPOSE [\"9090\"] is not the listen port 8080",
        "no stage runs `cargo build --release -p trellis --locked`",
        "sample.md:4: `--frob` is not a flag of `trellis serve`",
        "sample.md:4: environment variable TRELLIS_NO_SUCH is set",
        "sample.md:6: `frobnicate` is not a subcommand of `trellis`",
    ] {
        assert!(
            all.contains(expected),
            "not reported: {expected}\nreported:\n{all}"
        );
    }
    // `cargo run -p trellis` and `kubectl -n trellis` are not trellis
    // command lines.
    assert!(!all.contains("sample.md:7"), "{all}");
    assert!(!all.contains("sample.md:8"), "{all}");
}

#[test]
fn the_help_parser_reads_flags_values_variables_and_subcommands() {
    let help = "Usage: trellis serve [OPTIONS]\n\nCommands:\n  verify  Check it\n  help    Print this\n\n\
                Options:\n      --listen <LISTEN>\n          Address [env: TRELLIS_LISTEN=]\n\
                \x20     --demo\n          Demo\n  -h, --help\n          Print help\n";
    let accepts = parse_help(help);
    assert_eq!(accepts.flags.get("listen"), Some(&true));
    assert_eq!(accepts.flags.get("demo"), Some(&false));
    assert_eq!(accepts.flags.get("help"), Some(&false));
    assert!(accepts.env.contains("TRELLIS_LISTEN"));
    assert_eq!(accepts.subcommands, BTreeSet::from(["verify".to_owned()]));
    // And the binary's own: serve listens and reads TRELLIS_LISTEN.
    let serve = &Cli::of_binary().commands[&vec!["serve".to_owned()]];
    assert_eq!(serve.flags.get("listen"), Some(&true));
    assert!(serve.env.contains("TRELLIS_LISTEN"));
    assert!(
        serve.flags.contains_key("database-url"),
        "global flags are in every help"
    );
}
