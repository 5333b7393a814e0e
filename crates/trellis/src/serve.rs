//! `trellis serve`: the Trellis services in one process, all of them or the
//! roles `--roles` names (see `roles.rs`).

mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use trellis_alerts::Thresholds;
use trellis_commands::{CommandState, CommandsConfig, Erasure};
use trellis_dashboard::DashboardState;
use trellis_demo::DemoOrg;
use trellis_http::{HttpState, SystemClock};
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::query::ReadModels;
use trellis_queries::QueryState;

use crate::checkpoints::{self, CheckpointArgs, Keys};
use crate::nats::NatsArgs;
use crate::relay;
use crate::replica::{self, ReplicaArgs};
use crate::roles::{Role, Roles, single_active};
use crate::secret::SecretArgs;
use crate::signin::{self, SignInArgs};
use crate::store::{Backend, StoreArgs};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRELLIS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve /metrics on this address instead (one only the scraper
    /// reaches); --listen then answers 404 there. Without this flag and
    /// without --metrics-token, /metrics on --listen is open to whoever
    /// reaches it.
    #[arg(long, env = "TRELLIS_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Answer /metrics only to `Authorization: Bearer <TOKEN>` (401 otherwise),
    /// on whichever address serves it.
    #[arg(long, env = "TRELLIS_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true,
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    metrics_token: Option<String>,
    /// What this process runs, comma-separated: `api` (the HTTP API, the
    /// dashboard and sign-in), `projector` (the read models and the log's
    /// signed checkpoints), `relay` (the log to NATS), `alerts` (the
    /// evaluator and the publisher), `webhooks` (the dispatcher and the
    /// sender); `all` is every one. API processes run side by side; each
    /// worker is active in one process at a time and stands by in the others
    /// (on PostgreSQL; the embedded store's workers belong in one process).
    /// Without `api`, --listen serves only /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "TRELLIS_ROLES",
        value_name = "ROLES",
        default_value = "all"
    )]
    roles: Roles,
    /// The largest request body accepted, in bytes (imports are the largest).
    #[arg(long, env = "TRELLIS_BODY_LIMIT", default_value_t = 16 * 1024 * 1024)]
    body_limit: usize,
    /// Group commit: commands that arrive together share one transaction
    /// and one commit, at most this many at a time (each still answered on
    /// its own). 1 commits every command alone.
    #[arg(
        long,
        env = "TRELLIS_GROUP_COMMIT_MAX",
        value_name = "COMMANDS",
        default_value_t = 256,
        value_parser = clap::value_parser!(u16).range(1..=10_000)
    )]
    group_commit_max: u16,
    /// The most rows one measurement import may carry.
    #[arg(long, env = "TRELLIS_MAX_IMPORT_ROWS", default_value_t = 50_000)]
    max_import_rows: usize,
    /// The most events the write side's cached aggregate states may have
    /// been folded from, in all (about 130 bytes of memory each). A write
    /// for a rep whose state is not cached reads the rep's whole history
    /// first; the default keeps every rep of a 5,000-rep organisation with
    /// two years of history.
    #[arg(
        long,
        env = "TRELLIS_STATE_CACHE_EVENTS",
        value_name = "EVENTS",
        default_value_t = trellis_commands::STATE_CACHE_EVENTS
    )]
    state_cache_events: u64,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish
    /// before the process stops anyway (live-feed subscribers are told to
    /// reconnect at once).
    #[arg(
        long,
        env = "TRELLIS_SHUTDOWN_GRACE",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    shutdown_grace: u64,
    /// Fill an empty store with a demo organisation first (see `trellis demo`).
    #[arg(long)]
    demo: bool,
    /// The seed of the demo organisation (the same seed gives the same organisation).
    #[arg(long, default_value_t = 7)]
    demo_seed: u64,
    /// N: the quality gate is passed once every quality standard has been
    /// met for N consecutive periods.
    #[arg(long, env = "TRELLIS_QUALITY_GATE_PERIODS", default_value_t = 3)]
    quality_gate_periods: u32,
    #[command(flatten)]
    nats: NatsArgs,
    /// Copies of the JetStream streams (1 on one machine, 3 in a cluster).
    #[arg(long, env = "TRELLIS_NATS_REPLICAS", default_value_t = 1)]
    nats_replicas: usize,
    /// Webhook delivery attempts before a delivery goes to the dead-letter list.
    #[arg(long, env = "TRELLIS_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    webhook_max_attempts: u32,
    /// A PEM file of CA certificates to trust for https:// webhook receivers,
    /// besides the system's (for receivers behind a private CA). Read at
    /// startup: trellis does not start with a missing, unreadable or
    /// certificate-less file.
    #[arg(long, env = "TRELLIS_WEBHOOK_CA_FILE", value_name = "PATH")]
    webhook_ca_file: Option<PathBuf>,
    /// Let webhook receivers be on loopback, link-local or private addresses
    /// (a receiver on this machine or its network). Without it such a URL is
    /// refused when registered, and a name that resolves to such an address
    /// when a delivery is sent.
    #[arg(long, env = "TRELLIS_WEBHOOK_ALLOW_PRIVATE_TARGETS")]
    webhook_allow_private_targets: bool,
    #[command(flatten)]
    alerts: AlertArgs,
    #[command(flatten)]
    sign_in: SignInArgs,
    #[command(flatten)]
    secret: SecretArgs,
    #[command(flatten)]
    checkpoints: CheckpointArgs,
    #[command(flatten)]
    replica: ReplicaArgs,
    /// Read by `main`, which builds the tracing subscriber.
    #[command(flatten)]
    pub(crate) telemetry: crate::telemetry::TelemetryArgs,
}

/// When alerts fire: each threshold of [`trellis_alerts::Thresholds`], with
/// its default, and how often the time-based rules are evaluated.
#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    /// Alert the leader when a rep misses a standard this many consecutive
    /// measured periods.
    #[arg(long, env = "TRELLIS_ALERT_MISSED_PERIODS", value_name = "N",
          default_value_t = Thresholds::default().missed_periods,
          value_parser = clap::value_parser!(u32).range(1..))]
    alert_missed_periods: u32,
    /// Alert the leader when a rep has not been coached for this many days.
    #[arg(long, env = "TRELLIS_ALERT_NOT_COACHED_DAYS", value_name = "DAYS",
          default_value_t = Thresholds::default().not_coached_days,
          value_parser = clap::value_parser!(u32).range(1..))]
    alert_not_coached_days: u32,
    /// Alert the leader when a support request is still unresolved this many
    /// days after it was raised (its SLA).
    #[arg(long, env = "TRELLIS_ALERT_SUPPORT_SLA_DAYS", value_name = "DAYS",
          default_value_t = Thresholds::default().support_sla_days,
          value_parser = clap::value_parser!(u32).range(1..))]
    alert_support_sla_days: u32,
    /// Alert the leader when an open improvement plan's review date is this
    /// many days away or less.
    #[arg(long, env = "TRELLIS_ALERT_PLAN_REVIEW_DAYS", value_name = "DAYS",
          default_value_t = Thresholds::default().plan_review_days,
          value_parser = clap::value_parser!(u32).range(1..))]
    alert_plan_review_days: u32,
    /// A quality gate passed at most this many days ago still raises its
    /// alert (to the leader and the rep); older passes are history.
    #[arg(long, env = "TRELLIS_ALERT_QUALITY_GATE_DAYS", value_name = "DAYS",
          default_value_t = Thresholds::default().quality_gate_recent_days,
          value_parser = clap::value_parser!(u32).range(1..))]
    alert_quality_gate_days: u32,
    /// How often the rules run when nothing is appended, in seconds (the
    /// time-based rules change with the date alone).
    #[arg(long, env = "TRELLIS_ALERT_INTERVAL", value_name = "SECONDS",
          default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    alert_interval: u64,
}

impl AlertArgs {
    fn thresholds(&self) -> Thresholds {
        Thresholds {
            missed_periods: self.alert_missed_periods,
            not_coached_days: self.alert_not_coached_days,
            support_sla_days: self.alert_support_sla_days,
            plan_review_days: self.alert_plan_review_days,
            quality_gate_recent_days: self.alert_quality_gate_days,
        }
    }

    /// The alerts configuration of `trellis serve`.
    fn config(&self) -> trellis_alerts::AlertsConfig {
        let mut config = trellis_alerts::AlertsConfig::default();
        config.evaluator.thresholds = self.thresholds();
        config.evaluator.interval = Duration::from_secs(self.alert_interval);
        config
    }
}

impl ServeArgs {
    /// The same settings, with the demo organisation.
    pub fn with_demo(mut self) -> Self {
        self.demo = true;
        self
    }
}

/// `trellis serve`: build the application, then run it until Ctrl-C or SIGTERM.
pub async fn run(store_args: &StoreArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let app = Application::build(store_args, args).await?;
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The services of one process, built and listening, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: tokio::net::TcpListener,
    /// `/metrics` alone, with `--metrics-listen`.
    metrics_listener: Option<tokio::net::TcpListener>,
    router: axum::Router,
    /// What the APIs share: told to stop when shutdown begins.
    http: HttpState,
    shutdown_grace: Duration,
    workers: Workers,
    demo: Option<DemoOrg>,
    /// `(who, one-time link token)` for each person of the demo.
    demo_links: Vec<(String, String)>,
    /// The URL people reach the server at, when configured.
    public_url: Option<String>,
    /// When no admin may sign in yet: the flags that name this store, for
    /// the command that makes the first admin's link.
    first_admin: Option<String>,
    describe: String,
    roles: Roles,
}

impl Application {
    /// Opens the stores, records the demo when asked, starts the background
    /// workers, builds the router of every API and binds the listener.
    pub async fn build(store_args: &StoreArgs, args: ServeArgs) -> anyhow::Result<Application> {
        if args.demo && !args.roles.contains(Role::Api) {
            anyhow::bail!(
                "the demo needs the api role, for its sign-in links open the dashboard: leave \
                 --roles out, or name api in it"
            );
        }
        // The embedded store's leases hold within one process: its workers
        // belong in one process, this one.
        let idle: Vec<&str> = [Role::Projector, Role::Alerts, Role::Webhooks, Role::Relay]
            .into_iter()
            .filter(|&r| {
                !args.roles.contains(r) && (r != Role::Relay || args.nats.nats_url.is_some())
            })
            .map(Role::name)
            .collect();
        if store_args.database_url.is_none() && !idle.is_empty() {
            tracing::warn!(
                not_running = %idle.join(","),
                "on the embedded store every worker role belongs in one process (several \
                 processes on one data directory are not supported), and this one leaves some out"
            );
        }
        // A bad CA file stops the start before the store is touched or the
        // demo recorded (the webhooks read it again when they start).
        if let Some(path) = &args.webhook_ca_file {
            trellis_webhooks::tls::read_ca_file(path)
                .context("--webhook-ca-file (TRELLIS_WEBHOOK_CA_FILE)")?;
        }
        let public_url = args.sign_in.public_url()?;
        // The key that signs checkpoints also seals every appended event.
        let keys = args.checkpoints.keys(&store_args.data_dir)?;
        let stores = store_args
            .open_all()
            .await?
            .sealing_with(keys.signer.clone())
            .grouping_appends(usize::from(args.group_commit_max));
        warn_of_guards(&stores.backend).await;
        let access = signin::open_access(&stores, &args.sign_in).await?;
        // The API's reads go to the replica when there is one; the workers
        // keep the primary.
        let (api_stores, replica) = if args.roles.contains(Role::Api) {
            replica::route(
                stores.clone(),
                &args.replica,
                store_args.database_ca_file.as_deref(),
            )
            .await?
        } else {
            if args.replica.read_database_url.is_some() {
                tracing::warn!(
                    "--read-database-url serves the api role only: this process leaves it unused"
                );
            }
            (stores.clone(), None)
        };
        let http = HttpState::new(
            api_stores.log.clone(),
            args.secret.key(&store_args.data_dir)?,
            Arc::new(SystemClock),
        )
        .with_body_limit(args.body_limit)
        .with_authenticator(Arc::new(access.clone()));
        let http = metrics::protect(http, args.metrics_token.as_deref(), args.metrics_listen);
        // The relay, which holds no HttpState, counts into the same registry.
        http.metrics().install_global();
        let settings = GrowthSettings {
            quality_gate_periods: args.quality_gate_periods,
        };
        let commands = CommandState::new(
            http.clone(),
            CommandsConfig {
                max_import_rows: args.max_import_rows,
                state_cache_events: args.state_cache_events,
                erasure: Some(Erasure {
                    keys: stores.keys.clone(),
                    holders: vec![Arc::new(access.clone())],
                    leaders: Some(Arc::new(TeamLeaders(ReadModels::new(stores.read.clone())))),
                }),
            },
        );
        let demo = if args.demo {
            Some(seed_demo(&commands, &stores, args.demo_seed, &settings).await?)
        } else {
            None
        };
        let demo_links = match &demo {
            Some(org) => demo_links(org, &access).await?,
            None => Vec::new(),
        };
        // A new installation: nobody can sign in until the first admin's
        // link is made, which the start says how to do.
        let first_admin = if demo.is_none() && args.roles.contains(Role::Api) {
            let admins = access.active_admins().await?;
            admins.is_empty().then(|| store_args.flags())
        } else {
            None
        };
        let hooks = open_webhooks(&stores, &args).await?;
        for source in metrics::sources(&stores, &hooks, args.nats.nats_url.is_some()) {
            http.add_metrics_source(source);
        }
        let workers = Workers::start(&stores, &args, settings, hooks.clone(), &keys).await?;
        let pages = DashboardAccess {
            access,
            https: args.sign_in.https(),
        };
        let router = if args.roles.contains(Role::Api) {
            let router = router(
                http.clone(),
                commands,
                &api_stores,
                settings,
                hooks,
                pages,
                &keys,
            );
            match replica {
                Some(replica) => router.layer(axum::middleware::from_fn_with_state(
                    replica,
                    replica::layer,
                )),
                None => router,
            }
        } else {
            // Probes and scrapes only: every other path is a 404.
            trellis_http::app(http.clone(), [])
        };
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("failed to listen on {}", args.listen))?;
        let metrics_listener = metrics::bind(args.metrics_listen).await?;
        Ok(Application {
            listener,
            metrics_listener,
            router,
            http,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            workers,
            demo,
            demo_links,
            public_url,
            first_admin,
            describe: store_args.describe(),
            roles: args.roles,
        })
    }

    /// Where the application listens.
    pub fn address(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, lets in-flight requests finish,
    /// then stops the workers.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = self.address()?;
        let roles = self.roles;
        tracing::info!(%address, store = %self.describe, %roles, "trellis is serving");
        let only = if roles.contains(Role::Api) {
            ""
        } else {
            ", /healthz, /readyz and /metrics only"
        };
        eprintln!(
            "trellis: serving on http://{address} ({}; roles {roles}{only}); Ctrl-C stops",
            self.describe
        );
        if let Some(listener) = self.metrics_listener {
            metrics::serve(listener, self.http.clone())?;
        }
        let base = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        if let Some(org) = &self.demo {
            print_demo(org, &self.demo_links, &base)?;
        }
        if let Some(store) = &self.first_admin {
            // As it was started: `target/release/trellis` after `cargo run`.
            let program = std::env::args().next().unwrap_or_else(|| "trellis".into());
            // Listening on every interface, the address is no URL anyone
            // opens: the host people reach it by goes there.
            let base = match (&self.public_url, address.ip().is_unspecified()) {
                (None, true) => format!("http://<this host's name>:{}", address.port()),
                _ => base,
            };
            tracing::info!(%base, "nobody can sign in yet: make the first admin's sign-in link");
            eprintln!(
                "trellis: nobody can sign in yet. Make the first admin's one-time sign-in \
                 link, then open it:\n  {program} sign-in-link --admin \"Your Name\" \
                 --public-url {base}{store}"
            );
        }
        // On the signal: long-lived answers (the live feed) end, requests in
        // flight get `shutdown_grace` to finish, then the process stops anyway.
        let (http, grace) = (self.http.clone(), self.shutdown_grace);
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            http.stop();
            let _ = signalled.send(());
        };
        let serving = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .into_future();
        let overdue = async move {
            if on_signal.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            served = serving => served.context("the server failed")?,
            () = overdue => tracing::warn!(
                grace_seconds = grace.as_secs(),
                "requests still in flight after the shutdown grace; stopping anyway"
            ),
        }
        self.workers.stop().await;
        tracing::info!("trellis stopped; in-flight requests finished");
        Ok(())
    }
}

/// Every API of the process under one router: the writes, the reads, the
/// webhook admin routes and the dashboard, which asks the read side (and
/// shares its stream cache) every question `/v1` answers too, and records
/// its forms through the write API.
fn router(
    http: HttpState,
    commands: CommandState,
    stores: &crate::store::Stores,
    settings: GrowthSettings,
    hooks: trellis_webhooks::Webhooks,
    pages: DashboardAccess,
    keys: &Keys,
) -> axum::Router {
    let reads =
        QueryState::new(http.clone(), ReadModels::new(stores.read.clone())).with_settings(settings);
    // The pages' forms record through the write API itself (and the admin
    // pages manage webhooks through theirs).
    let webhooks = trellis_webhooks::WebhooksState::new(http.clone(), hooks);
    let writes = trellis_http::app(
        http.clone(),
        [
            trellis_commands::api(commands.clone()),
            trellis_webhooks::api(webhooks.clone()),
        ],
    );
    let queries = trellis_queries::api_with_access(reads.clone(), pages.access.clone());
    let dashboard = DashboardState::new(reads)
        .with_writes(writes)
        .with_access(pages.access, pages.https)
        .showing_writes_within(PAGE_SHOWS_WRITE_WITHIN);
    trellis_http::app(
        http,
        [
            trellis_commands::api(commands),
            queries,
            trellis_webhooks::api(webhooks),
            trellis_dashboard::api(dashboard),
            checkpoints::keys_api(keys),
        ],
    )
}

/// How the pages sign people in.
#[derive(Debug)]
struct DashboardAccess {
    access: trellis_access::Access,
    https: bool,
}

/// How long the demo's sign-in links work: a day, so that the printed
/// links still work after a coffee.
const DEMO_LINK_HOURS: i64 = 24;

/// How long a dashboard form that recorded waits, at most, for the read
/// models to show it before sending the browser to the page: the projector
/// applies a write within milliseconds, and a stalled one must not hold
/// every form for long.
const PAGE_SHOWS_WRITE_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// A one-time sign-in link for the demo's admin, auditor, each leader and
/// the featured rep (their sign-in accounts made on the way).
async fn demo_links(
    org: &DemoOrg,
    access: &trellis_access::Access,
) -> anyhow::Result<Vec<(String, String)>> {
    use trellis_access::NewAccount;
    use trellis_http::auth::Role;
    let by = "trellis demo";
    let now = chrono::Utc::now();
    let mut accounts = Vec::new();
    for (role, name) in [(Role::Admin, "Demo admin"), (Role::Auditor, "Demo auditor")] {
        let new = NewAccount {
            role,
            person: None,
            name: Some(name.to_owned()),
            email: None,
            oidc_subject: None,
        };
        let who = format!("{role:?}").to_lowercase();
        accounts.push((who, access.add_account(new, by, now).await?));
    }
    for leader in &org.leaders {
        let account = signin::account_for_person(access, Role::Leader, leader.id, by).await?;
        accounts.push((format!("leader {}", leader.name), account));
    }
    let rep = org.featured_rep();
    let account = signin::account_for_person(access, Role::Rep, rep.id, by).await?;
    accounts.push((format!("rep {}", rep.name), account));
    let mut links = Vec::new();
    for (who, account) in accounts {
        let lifetime = chrono::Duration::hours(DEMO_LINK_HOURS);
        let (token, _) = access
            .create_link(account.id, Some(lifetime), by, now)
            .await?;
        links.push((who, token));
    }
    Ok(links)
}

/// The webhook tables beside the log.
async fn open_webhooks(
    stores: &crate::store::Stores,
    args: &ServeArgs,
) -> anyhow::Result<trellis_webhooks::Webhooks> {
    let config = trellis_webhooks::WebhooksConfig {
        max_attempts: args.webhook_max_attempts,
        ca_file: args.webhook_ca_file.clone(),
        allow_private_targets: args.webhook_allow_private_targets,
        ..Default::default()
    };
    match &stores.backend {
        Backend::Postgres { store, .. } => {
            trellis_webhooks::Webhooks::postgres(store.pool().clone(), config).await
        }
        Backend::Sqlite(store) => trellis_webhooks::Webhooks::sqlite(store.path(), config).await,
    }
    .map_err(|e| anyhow::anyhow!("failed to start the webhooks: {e}"))
}

/// The background workers of the process, those its roles name: the
/// projection runner and the checkpoint signer (`projector`), the relay
/// (`relay`, with NATS), the alert evaluator and publisher (`alerts`; the
/// publisher with NATS), the webhook dispatcher and sender (`webhooks`).
/// Each is active in one process at a time (a lease; the others stand by)
/// and stops when told to.
#[derive(Debug)]
struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    async fn start(
        stores: &crate::store::Stores,
        args: &ServeArgs,
        settings: GrowthSettings,
        hooks: trellis_webhooks::Webhooks,
        keys: &Keys,
    ) -> anyhow::Result<Workers> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let mut tasks = Vec::new();
        let roles = args.roles;
        let lease = lease_config(stores);

        if roles.contains(Role::Projector) {
            // The read models, kept up to date (the engine's own lease: one
            // active runner per projection across processes).
            let engine = Engine::new(stores.log.clone(), stores.read.clone())
                .with_config(stores.backend.projector_config());
            let growth = Growth::new(settings);
            let stopped = until_stopped();
            tasks.push(tokio::spawn(async move {
                engine.run(Box::new(growth), stopped).await
            }));
        }

        let alerts = args.alerts.config();
        if roles.contains(Role::Alerts) {
            // Alerts: evaluated on a schedule and on appends, recorded in the
            // log. An occurrence is raised once whoever evaluates it (its
            // stream must be empty); the lease keeps the evaluations, and
            // their conflicts, to one process.
            let (log, read, evaluator) = (
                stores.log.clone(),
                ReadModels::new(stores.read.clone()),
                alerts.evaluator.clone(),
            );
            tasks.push(tokio::spawn(single_active(
                lease.clone(),
                "ALERTS_EVALUATOR",
                "alerts evaluator",
                until_stopped(),
                move || {
                    trellis_alerts::run_evaluator(
                        log.clone(),
                        read.clone(),
                        evaluator.clone(),
                        std::future::pending(),
                    )
                },
            )));
        }

        // The checkpoint worker hands each signed checkpoint to the webhooks.
        let checkpoint_hooks = hooks.clone();
        if roles.contains(Role::Webhooks) {
            // Webhooks: deliveries of what is appended. Queuing is idempotent
            // and each delivery is claimed by one sender, so two would be
            // safe; the lease keeps following the log to one process.
            let log = stores.log.clone();
            tasks.push(tokio::spawn(single_active(
                lease.clone(),
                "WEBHOOKS",
                "webhooks",
                until_stopped(),
                move || trellis_webhooks::run(log.clone(), hooks.clone(), std::future::pending()),
            )));
        }

        // NATS: the relay (the log as outbox), the alert publisher, and a
        // copy of the checkpoints.
        let mut checkpoint_stream = None;
        let uses_nats = [Role::Projector, Role::Relay, Role::Alerts]
            .into_iter()
            .any(|role| roles.contains(role));
        match &args.nats.nats_url {
            Some(_) if uses_nats => {
                let client = args.nats.connect().await?.expect("a NATS URL");
                if roles.contains(Role::Projector) {
                    // The checkpoint worker makes its stream once NATS answers.
                    let js = async_nats::jetstream::new(client.clone());
                    checkpoint_stream = Some((js, args.checkpoints.stream(), args.nats_replicas));
                }
                if roles.contains(Role::Relay) {
                    tasks.push(relay::spawn(
                        stores,
                        client.clone(),
                        args.nats_replicas,
                        until_stopped(),
                    ));
                }
                if roles.contains(Role::Alerts) {
                    let mut publisher = trellis_alerts::PublisherConfig {
                        replicas: args.nats_replicas,
                        ..alerts.publisher
                    };
                    if let Backend::Postgres { url, .. } = &stores.backend {
                        // One active publisher across processes, as for the relay.
                        publisher = publisher.with_postgres_lease(url.clone());
                    }
                    let (log, stopped) = (stores.log.clone(), until_stopped());
                    tasks.push(tokio::spawn(async move {
                        trellis_alerts::run_publisher(log, client, publisher, stopped).await;
                    }));
                }
            }
            None if roles.contains(Role::Relay) => tracing::warn!(
                "the relay role has nothing to do without --nats-url (TRELLIS_NATS_URL)"
            ),
            _ => {}
        }

        if roles.contains(Role::Projector) {
            // The log's Merkle tree, grown behind it and signed (one active
            // worker across processes), the checkpoints kept in JetStream too.
            let config = checkpoints::WorkerConfig {
                keys: keys.clone(),
                origin: args.checkpoints.log_origin.clone(),
                every_events: args.checkpoints.checkpoint_every_events.max(1),
                every: Duration::from_secs(args.checkpoints.checkpoint_every_seconds.max(1)),
                lease,
                jetstream: checkpoint_stream,
                webhooks: Some(checkpoint_hooks),
            };
            // The tree needs each event's hash, never its payload: the log
            // as stored, not decrypted.
            let (log, stopped) = (stores.backend.stored(), until_stopped());
            tasks.push(tokio::spawn(async move {
                checkpoints::run_worker(log, config, stopped).await
            }));
        }
        Ok(Workers { stop, tasks })
    }

    /// Tells every worker to stop and waits for each, at most 10 s.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a background service did not stop within 10 s");
            }
        }
    }
}

/// How the workers of this process agree with those of others on which is
/// active: a PostgreSQL advisory lock, or (the embedded store) within this
/// process only.
fn lease_config(stores: &crate::store::Stores) -> trellis_notifications::LeaseConfig {
    match &stores.backend {
        Backend::Postgres { url, .. } => {
            trellis_notifications::LeaseConfig::Postgres { url: url.clone() }
        }
        Backend::Sqlite(_) => trellis_notifications::LeaseConfig::InProcess,
    }
}

/// The read models tell a leader's id from a made-up one, for erasure.
#[derive(Debug, Clone)]
struct TeamLeaders(ReadModels);

#[async_trait::async_trait]
impl trellis_commands::Leaders for TeamLeaders {
    async fn leader_names(&self, person: uuid::Uuid) -> Result<Vec<String>, String> {
        self.0.leader_names(person).await.map_err(|e| e.to_string())
    }
}

/// Seeds the demo organisation into an empty store, and brings the read
/// models up to date so the first page shows it.
async fn seed_demo(
    commands: &CommandState,
    stores: &crate::store::Stores,
    seed: u64,
    settings: &GrowthSettings,
) -> anyhow::Result<DemoOrg> {
    if stores.log.head().await?.position > 0 || stores.log.stream_version(&any_team()).await? > 0 {
        anyhow::bail!(
            "--demo fills an empty store, and this one already holds events; use another \
             --data-dir (or database) for the demo"
        );
    }
    eprintln!("trellis: recording the demo organisation through the API (a few seconds)…");
    let today = chrono::Utc::now().date_naive();
    let org = trellis_demo::seed(commands, seed, today)
        .await
        .map_err(|e| anyhow::anyhow!("failed to record the demo organisation: {e}"))?;
    Engine::new(stores.log.clone(), stores.read.clone())
        .catch_up(&Growth::new(*settings))
        .await
        .context("failed to build the read models of the demo")?;
    Ok(org)
}

/// A stream id no one writes, to ask whether the log is empty.
fn any_team() -> trellis_eventstore::StreamId {
    trellis_eventstore::StreamId::new("team-none").expect("a valid literal")
}

fn print_demo(org: &DemoOrg, links: &[(String, String)], base: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nTrellis demo ({} reps): open one of these links to see the product from that side.\n\
         Each link works once, for {DEMO_LINK_HOURS} hours; `trellis sign-in-link` makes more.\n",
        org.reps.len()
    )?;
    for (who, token) in links {
        writeln!(out, "  {who:<28} {}", signin::link_url(base, token))?;
    }
    writeln!(
        out,
        "\nThe API is at {base}/v1 (see {base}/openapi.json); `trellis token` mints API tokens.\n"
    )?;
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, let in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Says in the log, once at start, which of the log's guards against
/// change are not in place (`trellis_log_guards_not_in_place` says it at
/// every scrape). The service runs without them: they guard against whoever
/// owns the database, and the checks of `audit verify` do not rest on them.
async fn warn_of_guards(backend: &crate::store::Backend) {
    match backend.guard_findings().await {
        Ok(findings) => {
            for finding in findings {
                tracing::warn!(
                    "{finding}; `trellis migrate`, run as the schema's owner, puts it back"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not check the log's guards"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        alerts: AlertArgs,
    }

    fn parse(args: &[&str]) -> Result<AlertArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("trellis").chain(args.iter().copied()))
            .map(|cli| cli.alerts)
    }

    #[test]
    fn without_flags_the_alert_thresholds_are_the_rules_defaults() {
        let alerts = parse(&[]).expect("no flags parse");
        assert_eq!(alerts.thresholds(), Thresholds::default());
        assert_eq!(alerts.config().evaluator.interval, Duration::from_secs(60));
    }

    #[test]
    fn each_alert_threshold_flag_reaches_the_evaluator() {
        let alerts = parse(&[
            "--alert-missed-periods",
            "3",
            "--alert-not-coached-days",
            "21",
            "--alert-support-sla-days",
            "5",
            "--alert-plan-review-days",
            "10",
            "--alert-quality-gate-days",
            "45",
            "--alert-interval",
            "300",
        ])
        .expect("valid flags");
        let config = alerts.config();
        assert_eq!(
            config.evaluator.thresholds,
            Thresholds {
                missed_periods: 3,
                not_coached_days: 21,
                support_sla_days: 5,
                plan_review_days: 10,
                quality_gate_recent_days: 45,
            }
        );
        assert_eq!(config.evaluator.interval, Duration::from_secs(300));
    }

    #[test]
    fn a_zero_threshold_is_refused_naming_the_flag() {
        for flag in [
            "--alert-missed-periods",
            "--alert-not-coached-days",
            "--alert-support-sla-days",
            "--alert-plan-review-days",
            "--alert-quality-gate-days",
            "--alert-interval",
        ] {
            let error = parse(&[flag, "0"]).expect_err("0 is refused").to_string();
            assert!(error.contains(flag), "{flag}: {error}");
            assert!(error.contains("0 is not in 1.."), "{flag}: {error}");
        }
    }
}
